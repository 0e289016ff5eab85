"""`fhbiometry ensemble` (tools/ensemble.py): the members' mean prediction of the same frames."""
import numpy as np
import pandas as pd

from fhbiometry import cli
from fhbiometry.core.geometry import COORD_COLUMNS
from fhbiometry.tools.ensemble import ensemble, points


def table(pred_offset, n=6, swap_ofd=False) -> pd.DataFrame:
    """A predictions table of ``n`` frames (3 subjects): true heads, predictions shifted by
    ``pred_offset`` (px, added to every coordinate); ``swap_ofd``: the OFD ends named the other way."""
    rng = np.random.default_rng(0)
    true = np.zeros((n, 4, 2))
    centre = rng.uniform(100, 200, (n, 2))
    half_ofd, half_bpd = rng.uniform(60, 90, n), rng.uniform(45, 60, n)
    true[:, 0] = centre - np.c_[half_ofd, np.zeros(n)]
    true[:, 1] = centre + np.c_[half_ofd, np.zeros(n)]
    true[:, 2] = centre - np.c_[np.zeros(n), half_bpd]
    true[:, 3] = centre + np.c_[np.zeros(n), half_bpd]
    pred = true + np.asarray(pred_offset, np.float64)
    if swap_ofd:
        pred = pred[:, [1, 0, 2, 3]]
    rows = {"frame_id": [f"f{i}" for i in range(n)], "subject_id": [f"s{i // 2}" for i in range(n)],
            "spacing_mm": np.full(n, 0.2), "label_ok": True, "evaluated": True}
    rows.update({f"true_{c}": true.reshape(n, 8)[:, j] for j, c in enumerate(COORD_COLUMNS)})
    rows.update({f"pred_{c}": pred.reshape(n, 8)[:, j] for j, c in enumerate(COORD_COLUMNS)})
    out = pd.DataFrame(rows)
    out["true_ofd_mm"], out["true_bpd_mm"] = 0.4 * half_ofd, 0.4 * half_bpd
    out["pred_ofd_mm"] = out["pred_bpd_mm"] = out["err_ofd_mm"] = out["err_bpd_mm"] = out["mre_mm"] = np.nan
    return out


def test_opposite_errors_cancel_and_the_errors_are_recomputed():
    out = ensemble([table([[3.0, -2.0]]), table([[-3.0, 2.0]])])
    np.testing.assert_allclose(points(out, "pred"), points(out, "true"), atol=1e-9)
    np.testing.assert_allclose(out["err_bpd_mm"], 0.0, atol=1e-9)
    np.testing.assert_allclose(out["mre_mm"], 0.0, atol=1e-9)
    np.testing.assert_allclose(out["pred_ofd_mm"], out["true_ofd_mm"], atol=1e-9)


def test_a_member_naming_the_ends_the_other_way_does_not_shrink_the_diameter():
    """Without matching, the mean of (a, b) and (b, a) is the centre twice: an OFD of 0."""
    plain, swapped = table([[1.0, 1.0]]), table([[1.0, 1.0]], swap_ofd=True)
    out = ensemble([plain, swapped])
    np.testing.assert_allclose(points(out, "pred"), points(plain, "pred"), atol=1e-9)


def test_the_documented_commands_write_a_table_that_paired_compare_reads(tmp_path, capsys):
    paths = [tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"]
    for path, offset in zip(paths, ([[2.0, 0.0]], [[-1.0, 1.0]], [[0.5, -1.0]])):
        table(offset).to_csv(path, index=False)
    assert cli.main(["ensemble", *map(str, paths), "--out", str(tmp_path / "ens.csv")]) == 0
    assert cli.main(["paired-compare", str(paths[0]), str(tmp_path / "ens.csv"), "--n-boot", "50"]) == 0
    assert "BPD MAE mm" in capsys.readouterr().out


def test_other_frames_are_refused_naming_the_file(tmp_path, capsys):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    table([[1.0, 0.0]]).to_csv(a, index=False)
    table([[1.0, 0.0]], n=4).to_csv(b, index=False)
    assert cli.main(["ensemble", str(a), str(b), "--out", str(tmp_path / "e.csv")]) == 2
    assert f"{b}: its evaluated frames differ" in capsys.readouterr().err
