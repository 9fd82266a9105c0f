"""Cutting shared-prefix trees into Slurm segments and dependent arrays (schedsweep.sharing.segments): pure planning."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from schedsweep.sharing import branching, segments
from schedsweep.sharing.segments import Array, Segment
from helpers import WSD, run


def records(*runs: Any) -> list[dict[str, Any]]:
    sharing = branching.find(runs)
    return [r.record() | branching.record_keys(sharing, r.id) for r in runs]


def wsd_tree(seed: int = 0) -> list[dict[str, Any]]:
    """Budgets 100, 250, 500 and a 1000-step trunk: forks at 81, 201 and 401 (test_branching)."""
    return records(*[run(WSD, t, seed) for t in (100, 250, 500, 1000)])


def test_a_wsd_trunk_is_cut_at_its_forks_and_each_branch_waits_for_the_segment_that_writes_its_fork() -> None:
    c, b, a, trunk = (r["id"] for r in wsd_tree())
    # Branches are listed first: they are placed once their parent's segments are.
    assert segments.cut(wsd_tree(), set()) == [
        Segment(trunk, 0, 81, None), Segment(trunk, 81, 201, 0), Segment(trunk, 201, 401, 1), Segment(trunk, 401, None, 2),
        Segment(c, 81, None, 0), Segment(b, 201, None, 1), Segment(a, 401, None, 2),
    ]


def test_forks_on_disk_need_no_segment_and_no_wait() -> None:
    c, b, a, trunk = (r["id"] for r in wsd_tree())
    # The trunk has passed 81 (its fork is written, its checkpoint is at 90); c starts from the fork at once.
    assert segments.cut(wsd_tree(), {(trunk, 81)}, resume={trunk: 90}) == [
        Segment(c, 81, None, None),
        Segment(trunk, 90, 201, None), Segment(trunk, 201, 401, 1), Segment(trunk, 401, None, 2),
        Segment(b, 201, None, 1), Segment(a, 401, None, 2),
    ]


def test_a_retried_branch_waits_for_its_parents_queued_job_or_else_for_nothing() -> None:
    tree = wsd_tree()
    b, trunk = tree[1], tree[3]["id"]
    assert segments.cut([b], set(), {(trunk, 201): "55_3"}) == [Segment(b["id"], 201, None, "55_3")]
    # No fork and nothing that will write it: the branch trains from step 0 (the same run, only slower).
    assert segments.cut([b], set()) == [Segment(b["id"], 0, None, None)]
    # A run whose branches are all done is one job, wherever its forks are; it resumes its checkpoint.
    assert segments.cut([tree[3]], set(), resume={trunk: 300}) == [Segment(trunk, 300, None, None)]
    # A branch with a checkpoint of its own resumes it, waiting for nothing.
    assert segments.cut([b, tree[3]], set(), resume={b["id"]: 230}) == [
        Segment(b["id"], 230, None, None), Segment(trunk, 0, None, None)]


def test_a_nested_branch_waits_for_its_own_parents_segment() -> None:
    big = {"id": "big", "forks": [200]}
    mid = {"id": "mid", "branch": {"of": "big", "step": 200}, "forks": [250]}
    small = {"id": "small", "branch": {"of": "mid", "step": 250}}
    assert segments.cut([small, mid, big], set()) == [
        Segment("big", 0, 200, None), Segment("big", 200, None, 0),
        Segment("mid", 200, 250, 0), Segment("mid", 250, None, 2),
        Segment("small", 250, None, 2),
    ]


def minutes(seg: Segment) -> int:
    return 60


def test_trees_of_one_shape_lie_side_by_side_one_array_per_position() -> None:
    cut = segments.cut(wsd_tree(0) + wsd_tree(1) + wsd_tree(2), set())
    grouped = segments.arrays(cut, minutes, max_size=16)
    assert len(grouped) == 7  # 4 trunk segments + 3 branches, each an array of the 3 trees
    for array in grouped:
        assert len(array.segments) == 3 and array.external is None
        runs = [cut[i].run for i in array.segments]
        assert len(set(runs)) == 3  # one task per tree
        if array.after is None:
            assert all(cut[i].after is None for i in array.segments)
            continue
        parent = grouped[array.after]
        assert grouped.index(parent) < grouped.index(array)  # submitted first
        assert [cut[i].after for i in array.segments] == list(parent.segments)  # task i waits for task i
    assert segments.dependency(grouped[1], "77") == "aftercorr:77"


def test_max_array_size_cuts_trees_into_chunks_and_a_one_task_array_uses_afterok() -> None:
    cut = segments.cut(wsd_tree(0) + wsd_tree(1) + wsd_tree(2), set())
    grouped = segments.arrays(cut, minutes, max_size=2)
    assert sorted(len(a.segments) for a in grouped) == [1] * 7 + [2] * 7
    single = next(a for a in grouped if len(a.segments) == 1 and a.after is not None)
    assert segments.dependency(single, "78") == "afterok:78"
    assert segments.dependency(grouped[0], None) is None


def test_shapes_differ_by_time_limit_and_by_an_earlier_launchs_job() -> None:
    b = wsd_tree()[1]
    cut = [Segment("x", 0, None), Segment("y", 0, None), Segment(b["id"], 201, None, "55_3")]
    grouped = segments.arrays(cut, lambda s: 10 if s.run == "x" else 60, max_size=16)
    assert sorted((a.time_min, a.segments, a.external) for a in grouped) == [
        (10, (0,), None), (60, (1,), None), (60, (2,), "55_3")]
    assert segments.dependency(next(a for a in grouped if a.external), None) == "afterok:55_3"


def test_throttles_are_attached_in_order() -> None:
    grouped = [Array(5, (0,), None), Array(5, (1,), 0)]
    assert [a.throttle for a in segments.throttled(grouped, [3, 2])] == [3, 2]


def test_a_segment_is_described_by_its_run_steps_and_job() -> None:
    assert segments.describe({"run": "abc", "job": "12_3", "start": 81, "stop": 201}) == \
        "segment steps 81-201 of run abc (Slurm job 12_3)"
    assert segments.describe({"run": "abc", "job": "12", "start": 401, "stop": None}) == \
        "segment steps 401-end of run abc (Slurm job 12)"


SCHEDULES = st.sampled_from([
    {"shape": "wsd", "warmup": 5, "decay": 0.2},
    {"shape": "constant", "warmup": 3},
    {"shape": "step", "milestones": [0.5, 0.75]},
    {"shape": "join", "warmup": 4, "pieces": [{"shape": "constant", "until": 0.6}, {"shape": "cosine"}]},
    {"shape": "cosine"},
])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(SCHEDULES, st.integers(20, 400), st.integers(0, 1)), min_size=1, max_size=10),
       st.integers(1, 4), st.randoms(use_true_random=False))
def test_every_run_is_covered_once_and_every_wait_is_on_the_segment_that_writes_the_fork(
        points: list[tuple[dict[str, Any], int, int]], max_size: int, rng: Any) -> None:
    runs = list({r.id: r for r in (run(s, t, seed) for s, t, seed in points)}.values())
    recs = records(*runs)
    rng.shuffle(recs)
    cut = segments.cut(recs, set())
    by_run = {r["id"]: [s for s in cut if s.run == r["id"]] for r in recs}
    for rec in recs:
        segs = by_run[rec["id"]]
        assert segs[-1].stop is None and all(s.stop is not None for s in segs[:-1])
        assert [s.start for s in segs[1:]] == [s.stop for s in segs[:-1]]  # contiguous
        for prev, s in zip(segs, segs[1:]):
            assert cut[s.after] == prev  # the run's next segment waits for its previous one
        branch = rec.get("branch")
        if branch:
            writer = cut[segs[0].after]
            assert (writer.run, writer.stop) == (branch["of"], branch["step"]) and segs[0].start == branch["step"]
        else:
            assert segs[0] == Segment(rec["id"], 0, segs[0].stop, None)
    assert all(s.after is None or s.after < i for i, s in enumerate(cut))
    grouped = segments.arrays(cut, lambda s: 1 + (s.stop or 0) % 3, max_size)
    placed = sorted(i for a in grouped for i in a.segments)
    assert placed == list(range(len(cut)))  # every segment in exactly one array
    for k, array in enumerate(grouped):
        assert len(array.segments) <= max_size
        assert len({1 + (cut[i].stop or 0) % 3 for i in array.segments}) == 1  # one time limit per array
        if array.after is not None:
            assert array.after < k and [cut[i].after for i in array.segments] == list(grouped[array.after].segments)


# ---- a later launch: new budgets branch from forks an earlier launch kept -----------------------------------


def test_new_budgets_branch_from_the_latest_usable_kept_fork_or_say_they_train_from_step_0() -> None:
    trunk, half = run(WSD, 1000), run(WSD, 500)
    earlier = [(trunk, (81, 401)), (half, ())]  # the trunk's forks on disk
    # A 600-step run shares 481 steps with the trunk: it starts from the fork at 401.
    new = [run(WSD, 600), run({"shape": "cosine"}, 300)]
    kept = branching.from_kept(new, branching.find(new), earlier)
    assert kept.branches == {new[0].id: branching.Branch(new[0].id, trunk.id, 401, 600)} and kept.gone == 0
    assert kept.line() == "1 new runs branch from forks kept by an earlier launch (401 steps not trained again)"
    # With a new 250-step run forking from it at 201, the 600-step run must pass 201 itself: fork 81.
    new = [run(WSD, 600), run(WSD, 250)]
    kept = branching.from_kept(new, branching.find(new), earlier)
    assert kept.branches == {new[0].id: branching.Branch(new[0].id, trunk.id, 81, 600)}
    # No usable fork kept (a 250-step run needs one in [25, 201]): it trains from step 0, and the plan says so.
    alone = branching.from_kept([run(WSD, 250)], branching.find([]), [(trunk, (401,)), (half, ())])
    assert alone.branches == {} and alone.gone == 1
    assert alone.line().startswith("1 share a prefix with earlier runs but find no fork of theirs kept to start from")
