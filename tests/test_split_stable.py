"""The hash split: stable under added or removed subjects, guarded on small sets, and checked
on the frames the QC policy accepts for training."""
import numpy as np
import pandas as pd
import pytest

from fhbiometry.core.geometry import COORD_COLUMNS, ellipse_landmarks
from fhbiometry.data.split import SPLITS, SplitError, guard_empty, hash_assign, make_split, unit_hash

FR = {"train": 0.7, "val": 0.15, "test": 0.15}
POINTS = ellipse_landmarks(100, 80, 60, 45, 0.3).ravel()


def labels(subjects, frames=2, usable=lambda s, f: True):
    rows = [{"frame_id": f"{s}_f{f}", "subject_id": s, "use_for_training": usable(s, f),
             **dict(zip(COORD_COLUMNS, POINTS))} for s in subjects for f in range(frames)]
    return pd.DataFrame(rows)


def by_subject(table):
    return table.groupby("subject_id")["split"].first().to_dict()


def test_unit_hash_is_fixed_and_in_the_unit_interval():
    # a fixed value: the rule must not change silently (it would move every subject)
    assert unit_hash(42, "sub001") == int.from_bytes(
        __import__("hashlib").sha256(b"42:sub001").digest()[:8], "big") / 2 ** 64
    values = [unit_hash(0, f"s{i}") for i in range(500)]
    assert 0 <= min(values)
    assert max(values) < 1
    assert len(set(values)) == 500


def test_hash_fractions_are_close_on_many_subjects():
    got = hash_assign([f"s{i:04d}" for i in range(4000)], FR, seed=3)
    share = {name: list(got.values()).count(name) / 4000 for name in SPLITS}
    assert all(abs(share[n] - FR[n]) < 0.03 for n in SPLITS)


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_adding_or_removing_subjects_moves_no_other_subject(seed):
    base = [f"s{i:03d}" for i in range(60)]
    before = by_subject(make_split(labels(base), FR, seed)[0])
    removed = base[::7]
    kept = [s for s in base if s not in removed]
    after_remove = by_subject(make_split(labels(kept), FR, seed)[0])
    added = by_subject(make_split(labels(base + [f"new{i}" for i in range(25)]), FR, seed)[0])
    assert all(after_remove[s] == before[s] for s in kept)
    assert all(added[s] == before[s] for s in base)


def test_excluded_frames_do_not_move_subjects():
    base = [f"s{i:03d}" for i in range(40)]
    full = by_subject(make_split(labels(base), FR, 5)[0])
    some = by_subject(make_split(labels(base, usable=lambda s, f: f == 0 or s < "s020"), FR, 5)[0])
    assert some == full


def test_eight_subjects_get_every_split_and_only_guarded_subjects_move():
    subjects = [f"s{i}" for i in range(8)]
    for seed in range(40):
        hashed = hash_assign(subjects, FR, seed)
        table, summary = make_split(labels(subjects), FR, seed)
        got = by_subject(table)
        assert all(summary[n]["subjects"] >= 1 for n in SPLITS)
        moved = {m[0] for m in summary["guard_moved"]}
        assert {s for s in subjects if got[s] != hashed[s]} == moved
        assert len(moved) <= 2
        assert make_split(labels(subjects), FR, seed)[0].equals(table)  # deterministic


def test_guard_takes_the_subject_nearest_to_the_empty_interval():
    keys = [f"k{i}" for i in range(6)]
    out, moved = guard_empty(dict.fromkeys(keys, "train"), set(keys), FR, seed=0)

    def gap(k, low, high):
        h = unit_hash(0, k)
        return (low - h if h < low else max(h - high, 0.0), k)
    first = min(keys, key=lambda k: gap(k, 0.7, 0.85))
    second = min((k for k in keys if k != first), key=lambda k: gap(k, 0.85, 1.0))
    assert moved == [(first, "train", "val"), (second, "train", "test")]
    assert sum(v == "train" for v in out.values()) == 4
    # one usable key cannot fill three splits: nothing moves, the check then fails
    assert guard_empty({"a": "train", "b": "val"}, {"a"}, FR, 0)[1] == []


def test_split_is_assigned_among_usable_frames():
    """QC excludes every frame of the subjects that the hash sends to val: the guard gives val
    a usable subject, and the excluded subjects keep their hash split."""
    subjects = [f"s{i:02d}" for i in range(20)]
    hashed = hash_assign(subjects, FR, 1)
    bad = {s for s in subjects if hashed[s] == "val"}
    assert bad
    table, summary = make_split(labels(subjects, usable=lambda s, f: s not in bad), FR, 1, policy="exclude")
    assert all(summary[n]["usable_frames"] >= 1 for n in SPLITS)
    got = by_subject(table)
    assert all(got[s] == "val" for s in bad)
    assert len(table) == 40  # unusable frames still split


def test_too_few_usable_subjects_fail_at_the_split_with_the_cause():
    subjects = [f"s{i:02d}" for i in range(10)]
    only = subjects[:2]
    with pytest.raises(SplitError, match=r"qc.policy 'exclude' leaves 4 of 20 labelled frames usable.*"
                                         r"from 2 subjects.*qc.policy: keep") as err:
        make_split(labels(subjects, usable=lambda s, f: s in only), FR, 0, policy="exclude")
    assert "split(s) would have no frame usable" in str(err.value)
    with pytest.raises(SplitError, match="train and val and test"):
        make_split(labels(subjects, usable=lambda s, f: False), FR, 0, policy="exclude")


def test_frame_split_hashes_frame_ids_and_is_stable():
    subjects = [f"s{i:02d}" for i in range(30)]
    table, summary = make_split(labels(subjects, 3), FR, 2, grouped=False)
    assert summary["subject_overlap"] > 0
    smaller, _ = make_split(labels(subjects[:20], 3), FR, 2, grouped=False)
    merged = smaller.merge(table, on="frame_id")
    assert (merged["split_x"] == merged["split_y"]).all()


def test_missing_use_for_training_and_stem_subject_count():
    frame = labels(["a", "b", "c"])
    with pytest.raises(SplitError, match="use_for_training.*rerun the qc stage"):
        make_split(frame.drop(columns="use_for_training"), FR, 0)
    assert make_split(frame, FR, 0)[1]["subject_id_from_stem"] == 0
    frame["subject_source"] = np.where(frame["subject_id"] == "a", "stem", "pattern")
    assert make_split(frame, FR, 0)[1]["subject_id_from_stem"] == 1
