"""The coded concepts of the biometry SR, each taken from pydicom's concept dictionary
(``pydicom.sr.codedict.codes``, generated from DICOM PS3.16), so a code that is not in the
standard's dictionary fails at import. How each one was checked (docs/predict.md, "DICOM SR"):

* the LOINC measurement codes are pydicom's and sit in the context groups the standard names:
  BPD 11820-8, OFD 11851-3, HC 11984-2 in CID 12005 "Fetal Biometry Measurements"; Cephalic
  Index 11823-2 in CID 12004 "Fetal Biometry Ratios"; Gestational Age 18185-9 in CID 12019;
  "BPD, Hadlock 1984" 11902-4 and "HC, Hadlock 1984" 11932-1 in CID 12013 "Gestational Age
  Equations and Tables" (the CIDs as pydicom's dictionary lists them; tests/test_clinical_sr.py
  asserts every value and meaning below). HC is 11984-2 (11779-6 is "EDD from LMP").
* the container titles (125000, 125002, 125001, 125005), Derivation (121401), Equation (121420),
  the observer context and Source of Measurement (121112) are DCM codes of pydicom's dictionary;
  the derivation value Median (SCT 373099004) is in CID 3627 "Measurement Type" (TID 300's
  $Derivation); the interval's half-widths use CID 225 "Measurement Uncertainty Concepts"
  (SCT 371886008 / 371885007, TID 310), in mm.
* units are UCUM: mm, wk, % (the cephalic index is 100 BPD / OFD).

The template rows themselves (which item goes where) follow PS3.16 TID 5000 / 5005 / 5008 /
300 / 310 / 320 / 1001-1004 / 4019 as far as they could be checked offline: against highdicom's
template classes (TID 1001-1004, 4019) and dciodvfy, which checks the Comprehensive SR IOD and
its relationship constraints (it does not check TID 5000 itself).
"""
from __future__ import annotations

from pydicom.sr.codedict import codes

REPORT = codes.DCM.OBGYNUltrasoundProcedureReport          # (125000, DCM) TID 5000 root
FETAL_BIOMETRY = codes.DCM.FetalBiometry                    # (125002, DCM) TID 5005 section
BIOMETRY_RATIOS = codes.DCM.FetalBiometryRatios             # (125001, DCM) TID 5004 section
BIOMETRY_GROUP = codes.DCM.BiometryGroup                    # (125005, DCM) TID 5008 group

BPD = codes.LN.BiparietalDiameter                           # 11820-8
OFD = codes.LN.OccipitalFrontalDiameter                     # 11851-3
HC = codes.LN.HeadCircumference                             # 11984-2
CEPHALIC_INDEX = codes.LN.CephalicIndex                     # 11823-2
GESTATIONAL_AGE = codes.LN.GestationalAge                   # 18185-9
HADLOCK_BPD = codes.LN.BPDHadlock1984                       # 11902-4
HADLOCK_HC = codes.LN.HCHadlock1984                         # 11932-1

DERIVATION = codes.DCM.Derivation                           # 121401
MEDIAN = codes.SCT.Median                                   # 373099004, CID 3627
EQUATION = codes.DCM.Equation                               # 121420
UPPER_UNCERTAINTY = codes.SCT.RangeOfUpperMeasurementUncertainty   # 371886008, CID 225
LOWER_UNCERTAINTY = codes.SCT.RangeOfLowerMeasurementUncertainty   # 371885007, CID 225
SOURCE_OF_MEASUREMENT = codes.DCM.SourceOfMeasurement       # 121112 (TID 320 image reference)
COMMENT = codes.DCM.Comment                                 # 121106
DEVICE = codes.DCM.Device                                   # 121007 (observer type)

MM = codes.UCUM.Millimeter
WEEK = codes.UCUM.Week
PERCENT = codes.UCUM.Percent

# summary column -> (concept, unit, the Hadlock equation its gestational age comes from, GA column)
MEASUREMENTS = {
    "bpd_mm": (BPD, MM, HADLOCK_BPD, "ga_bpd_weeks"),
    "ofd_mm": (OFD, MM, None, None),
    "hc_mm": (HC, MM, HADLOCK_HC, "ga_hc_weeks"),
}
RATIOS = {"cephalic_index": (CEPHALIC_INDEX, PERCENT)}

# what each code must be (value, scheme, meaning), asserted by the tests
EXPECTED = {
    "BPD": ("11820-8", "LN", "Biparietal Diameter"), "OFD": ("11851-3", "LN", "Occipital-Frontal Diameter"),
    "HC": ("11984-2", "LN", "Head Circumference"), "CEPHALIC_INDEX": ("11823-2", "LN", "Cephalic Index"),
    "GESTATIONAL_AGE": ("18185-9", "LN", "Gestational Age"),
    "HADLOCK_BPD": ("11902-4", "LN", "BPD, Hadlock 1984"), "HADLOCK_HC": ("11932-1", "LN", "HC, Hadlock 1984"),
    "REPORT": ("125000", "DCM", "OB-GYN Ultrasound Procedure Report"),
    "FETAL_BIOMETRY": ("125002", "DCM", "Fetal Biometry"), "BIOMETRY_GROUP": ("125005", "DCM", "Biometry Group"),
    "BIOMETRY_RATIOS": ("125001", "DCM", "Fetal Biometry Ratios"), "MEDIAN": ("373099004", "SCT", "Median"),
    "DERIVATION": ("121401", "DCM", "Derivation"), "EQUATION": ("121420", "DCM", "Equation"),
    "MM": ("mm", "UCUM", "mm"), "WEEK": ("wk", "UCUM", "week"), "PERCENT": ("%", "UCUM", "Percent"),
}
