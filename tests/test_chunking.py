import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nvs.chunking import Chunk, anchor_indices, plan_chunks, run_chunks


@settings(max_examples=200, deadline=None)
@given(targets=st.integers(1, 60), inputs=st.integers(1, 6), frames=st.integers(1, 25), extra=st.integers(0, 4))
def test_plan_covers_every_target_once_and_respects_limits(targets, inputs, frames, extra):
    max_views = inputs + extra
    plan = plan_chunks(targets, inputs, frames, max_views)
    generated = [t for chunk in plan for t in chunk.targets]
    assert sorted(generated) == list(range(targets))
    done: set[int] = set()
    for chunk in plan:
        assert 1 <= len(chunk.targets) <= frames
        assert 1 <= len(chunk.inputs) + len(chunk.anchors) <= max_views
        assert chunk.inputs[0] == 0  # the first input view stays first
        assert set(chunk.anchors) <= done  # anchors are generated before they condition
        done |= set(chunk.targets)


def test_short_path_is_one_pass_on_all_inputs():
    assert plan_chunks(14, 3, 14, 6) == [Chunk(tuple(range(14)), (0, 1, 2))]


def test_long_path_anchors_then_in_between_chunks():
    plan = plan_chunks(10, 2, 4, 4)
    assert plan[0] == Chunk((0, 3, 6, 9), (0, 1))
    assert plan[1:] == [Chunk((1, 2), (0, 1), (0, 3)), Chunk((4, 5), (0, 1), (3, 6)), Chunk((7, 8), (0, 1), (6, 9))]


def test_anchors_displace_extra_inputs_but_not_the_first():
    plan = plan_chunks(20, 6, 5, 6)
    assert all(c.inputs == (0, 1, 2, 3) for c in plan[1:])
    plan = plan_chunks(20, 2, 5, 2)
    assert all(c.inputs == (0,) and len(c.anchors) == 1 for c in plan[1:])


def test_anchor_indices_spread_and_distinct():
    assert anchor_indices(40, 4) == [0, 13, 26, 39]
    assert anchor_indices(3, 5) == [0, 1, 2]


@pytest.mark.parametrize(
    "args,match",
    [
        ((0, 1, 4, 6), "at least one camera"),
        ((5, 7, 4, 6), "1 to 6"),
        ((5, 0, 4, 6), "1 to 6"),
        ((5, 1, 0, 6), "num_frames"),
    ],
)
def test_plan_errors(args, match):
    with pytest.raises(ValueError, match=match):
        plan_chunks(*args)


def test_run_chunks_places_frames_in_path_order_and_passes_anchor_frames():
    plan = plan_chunks(11, 1, 3, 3)
    seen = []

    def generate(chunk, anchors):
        seen.append(None if anchors is None else anchors[:, 0, 0, 0].tolist())
        return torch.tensor(chunk.targets, dtype=torch.float32)[:, None, None, None].expand(-1, 3, 2, 2)

    frames = run_chunks(plan, generate, 11)
    assert frames[:, 0, 0, 0].tolist() == list(range(11))
    assert seen[0] is None and all(s == [float(a) for a in c.anchors] for s, c in zip(seen[1:], plan[1:]))


def test_run_chunks_rejects_a_bad_plan():
    with pytest.raises(ValueError, match="no earlier chunk"):
        run_chunks([Chunk((0,), (0,), (1,))], lambda c, a: torch.zeros(1, 3, 2, 2), 2)
    with pytest.raises(ValueError, match="ungenerated"):
        run_chunks([Chunk((0,), (0,))], lambda c, a: torch.zeros(1, 3, 2, 2), 2)


@settings(max_examples=200, deadline=None)
@given(targets=st.integers(1, 60), inputs=st.integers(1, 6), frames=st.integers(1, 25))
def test_windows_keep_every_target_once_in_full_passes(targets, inputs, frames):
    plan = plan_chunks(targets, inputs, frames, 6, strategy="windows")
    kept = [t for chunk in plan for t in chunk.targets]
    assert sorted(kept) == list(range(targets))
    for chunk in plan:
        assert len(chunk.frames) == min(frames, targets)  # never a short pass
        assert chunk.inputs == tuple(range(inputs)) and chunk.anchors == ()
        assert list(chunk.frames) == list(range(chunk.frames[0], chunk.frames[0] + len(chunk.frames)))
        assert not set(chunk.padding) & set(chunk.targets)


def test_windows_pad_the_last_pass_with_frames_before_it():
    plan = plan_chunks(10, 2, 4, 6, strategy="windows")
    assert plan == [Chunk((0, 1, 2, 3), (0, 1)), Chunk((4, 5, 6, 7), (0, 1)), Chunk((8, 9), (0, 1), padding=(6, 7))]
    seen = []

    def generate(chunk, anchors):
        seen.append(chunk.frames)
        return torch.tensor(chunk.frames, dtype=torch.float32)[:, None, None, None].expand(-1, 3, 1, 1) + 100 * len(
            seen
        )

    out = run_chunks(plan, generate, 10)
    assert seen[-1] == (6, 7, 8, 9)
    assert out[:, 0, 0, 0].tolist() == [100, 101, 102, 103, 204, 205, 206, 207, 308, 309]  # padding dropped
    with pytest.raises(ValueError, match="chunking"):
        plan_chunks(10, 2, 4, 6, strategy="sliding")
