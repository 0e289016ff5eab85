"""`fhbiometry label-agreement` (fhbiometry.tools.label_agreement): CSV diameters against the
ellipse axes, pairs taken by length."""
from __future__ import annotations

import pandas as pd
import pytest

from fhbiometry.tools import label_agreement as la


def row(frame, csv_ofd, csv_bpd, ref_ofd, ref_bpd, spacing=0.5):
    """Horizontal OFDs and vertical BPDs of the given lengths in pixels."""
    out = {"frame_id": frame, "spacing_mm": spacing}
    for prefix, ofd, bpd in (("csv_", csv_ofd, csv_bpd), ("ref_", ref_ofd, ref_bpd)):
        out.update({f"{prefix}ofd_1_x": 0, f"{prefix}ofd_1_y": 0, f"{prefix}ofd_2_x": ofd, f"{prefix}ofd_2_y": 0,
                    f"{prefix}bpd_1_x": 0, f"{prefix}bpd_1_y": 0, f"{prefix}bpd_2_x": 0, f"{prefix}bpd_2_y": bpd})
    return out


def test_differences_take_pairs_by_length_and_the_summary_splits_agreeing_rows():
    table = pd.DataFrame([
        row("a", 200, 160, 200, 164),   # agrees; BPD 2 px = 1 mm short
        row("b", 160, 200, 200, 164),   # the shorter pair named ofd: same diameters as row a
        row("c", 100, 90, 200, 164),    # far off
    ])
    diff = la.differences(table)
    assert diff["bpd"].tolist() == pytest.approx([-2.0, -2.0, -37.0])
    assert diff["ofd"].tolist() == pytest.approx([0.0, 0.0, -50.0])
    s = la.summary(diff, 3.0)
    assert s["all rows"]["n"] == 3
    assert s["rows within 3 mm"] == {"n": 2, "bpd_median_mm": -2.0, "bpd_mean_mm": -2.0,
                                     "ofd_median_mm": 0.0, "ofd_mean_mm": 0.0}


def test_a_table_without_the_reference_columns_names_the_fix():
    with pytest.raises(ValueError, match="qc.reference: ellipse"):
        la.differences(pd.DataFrame([{"frame_id": "a", "spacing_mm": 1.0}]))
