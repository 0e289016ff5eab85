"""Near-duplicate frames: the dHash, the pair search, the cross-split report and its policy."""

import numpy as np
import pandas as pd
import pytest

from fhbiometry.data.neardup import (cross_split_report, dhash, enforce, hamming_pairs,
                                hash_frames, measure)

from fixtures_io import HC18, hc18_csv_data

CFG = {"max_distance": 4, "on_leak": "report"}


def scene(seed, shift=0, size=(128, 160)):
    """A smooth random image (blurred noise), optionally moved right by ``shift`` pixels."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (8, 10)).astype(float)
    img = np.kron(coarse, np.ones((size[0] // 8 + 1, size[1] // 10 + 1)))[:size[0], :size[1] + 8]
    img = np.roll(img, shift, axis=1)[:, 4:4 + size[1]]
    k = np.ones(9) / 9
    img = np.apply_along_axis(np.convolve, 1, img, k, "same")
    img = np.apply_along_axis(np.convolve, 0, img, k, "same")
    return np.clip(img, 0, 255).astype(np.uint8)


def bits(a, b):
    return bin(a ^ b).count("1")


def test_dhash_of_gradients_is_fixed():
    ramp = np.tile(np.arange(90, dtype=np.uint8), (40, 1))
    assert dhash(ramp) == 2 ** 64 - 1                       # every block darker than its right one
    assert dhash(ramp[:, ::-1]) == 0
    assert dhash(np.full((40, 90), 7, np.uint8)) == 0
    assert dhash(ramp.astype(np.uint16) * 100) == dhash(ramp)  # dtype and contrast do not matter
    with pytest.raises(ValueError, match="2-D image"):
        dhash(np.zeros((4, 4), np.uint8))


def test_moved_frames_are_near_and_other_scenes_are_far():
    a, moved, other = scene(1), scene(1, shift=2), scene(2)
    assert bits(dhash(a), dhash(moved)) <= 4
    assert bits(dhash(a), dhash(other)) > 12


def test_pair_search_matches_brute_force():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2 ** 63, 40, dtype=np.int64).astype(np.uint64)
    flips = np.uint64(1) << rng.integers(0, 64, 40).astype(np.uint64)
    hashes = np.concatenate([base, base ^ flips])          # every hash has a twin 1 bit away
    got = hamming_pairs(hashes, 3, chunk=7)
    want = [(i, j, bits(int(hashes[i]), int(hashes[j]))) for i in range(80) for j in range(i + 1, 80)
            if bits(int(hashes[i]), int(hashes[j])) <= 3]
    assert [tuple(p) for p in got] == want
    assert len(want) >= 40


def crafted_split():
    frames = {"a0": scene(1), "a1": scene(1, 2), "b0": scene(2), "c0": scene(3), "c1": scene(1, 1),
              "d0": scene(4)}
    table = pd.DataFrame({"frame_id": list(frames), "subject_id": ["a", "a", "b", "c", "c", "d"],
                          "split": ["train", "train", "val", "test", "test", "val"]})
    return table, frames


def test_cross_split_pairs_are_counted_per_split_pair():
    table, frames = crafted_split()
    r = cross_split_report(table, frames, CFG)
    # a0 ~ a1 is within train; c1 (test) copies a's scene: two pairs cross train-test
    assert r["cross_split"] == {"train-val": 0, "train-test": 2, "val-test": 0}
    assert r["cross_split_total"] == 2
    assert r["cross_subject_pairs"] == 2
    assert r["pairs"] == 3
    assert {(e["a"], e["b"]) for e in r["examples"]} == {("a0", "c1"), ("a1", "c1")}
    enforce(r)  # report: no error
    with pytest.raises(ValueError, match="2 near-duplicate frame pairs cross.*on_leak: report"):
        enforce(cross_split_report(table, frames, {**CFG, "on_leak": "fail"}))


def test_missing_frames_are_named():
    table, frames = crafted_split()
    with pytest.raises(KeyError, match="frames.npz has no frame 'zz'"):
        hash_frames(frames, ["a0", "zz"])


def test_measure_reports_recall_and_cross_subject_pairs():
    table, frames = crafted_split()
    m = measure(frames, table, thresholds=(0, 4)).set_index("max_distance")
    assert m.loc[4, "consecutive_pairs"] == 2      # a0-a1 and c0-c1
    assert m.loc[4, "recall"] == 0.5
    assert m.loc[4, "cross_subject_pairs"] == 2


@pytest.mark.slow
@pytest.mark.skipif(not HC18.exists(), reason=f"real data set not found at {HC18}")
def test_hc18_has_no_cross_subject_near_duplicate_at_the_default_threshold():
    from fhbiometry.data.extract import extract

    data = hc18_csv_data()
    ex = extract(data, progress=False)
    m = measure(ex.frames, ex.manifest, thresholds=(4, 5)).set_index("max_distance")
    # docs/leakage.md: the first pair (237_3HC ~ 284_HC, 5 bits) is two different scans
    assert m.loc[4, "cross_subject_pairs"] == 0
    assert m.loc[5, "cross_subject_pairs"] == 1
