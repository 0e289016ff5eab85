"""clinical: what ``fhbiometry predict`` hands to a clinic's systems (docs/predict.md).

Owns the DICOM Structured Report per study (``sr``: a Comprehensive SR modelled on the OB-GYN
Ultrasound Procedure Report, TID 5000 / 5005 / 5008; ``codes``: every concept it uses, checked
against pydicom's concept dictionary), the study report page (``report``: ``<out>/report.html``,
one self-contained page from a Jinja2 template, ``figures``: its images and plots), the source
files and their DICOM headers (``sources``) and the round trip with a DICOMweb server
(``dicomweb``: QIDO-RS find, WADO-RS fetch, STOW-RS store; credentials from the environment or
a config file). It reads the frame and summary tables that ``measure`` writes; ``measure`` never
needs it to measure.

Never imports: training, evaluation, measure, tools; torch.
"""
