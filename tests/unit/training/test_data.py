"""The procedural data set: deterministic, captioned in many ways, with held-out combinations."""

from __future__ import annotations

import numpy as np

from reelfoundry.training.data import (
    COLOURS,
    FRAMES,
    HELD_OUT,
    MOTIONS,
    SHAPES,
    SIZE,
    TRAIN_COMBOS,
    heldout_samples,
    sample,
)


def test_same_seed_and_index_give_the_same_sample() -> None:
    a, b = sample(7, 123), sample(7, 123)
    assert np.array_equal(a.clip, b.clip) and a.caption == b.caption and a.spec == b.spec
    assert not np.array_equal(sample(7, 124).clip, a.clip)
    assert not np.array_equal(sample(8, 123).clip, a.clip)


def test_clip_shape_and_content() -> None:
    s = sample(0, 0)
    assert s.clip.shape == (FRAMES, SIZE, SIZE, 3) and s.clip.dtype == np.uint8
    assert s.spec.colour != s.spec.background
    assert not np.array_equal(s.clip[0], s.clip[-1])  # something moves or changes size


def test_every_value_trains_and_held_out_combos_never_do() -> None:
    assert len(HELD_OUT) == 24 and not HELD_OUT & set(TRAIN_COMBOS)
    for i, values in enumerate((COLOURS, SHAPES, MOTIONS)):
        assert {combo[i] for combo in TRAIN_COMBOS} == set(values)
    seen = {(s.spec.colour, s.spec.shape, s.spec.motion) for s in (sample(3, i) for i in range(400))}
    assert not seen & HELD_OUT
    assert {(s.spec.colour, s.spec.shape, s.spec.motion) for s in heldout_samples(3, 50)} <= HELD_OUT


def test_captions_paraphrase() -> None:
    captions = {sample(1, i).caption for i in range(300)}
    assert len(captions) > 250
    joined = " ".join(captions)
    for phrase in ("crimson", "to the left", "backdrop", "a red", "is "):
        assert phrase in joined, phrase
    assert " a orange" not in joined and " a azure" not in joined


def test_motion_goes_the_captioned_way() -> None:
    for i in range(60):
        s = sample(5, i)
        mask = np.abs(s.clip.astype(int) - np.array(COLOURS[s.spec.colour])).sum(-1) < 60
        ys, xs = np.nonzero(mask[0])
        ye, xe = np.nonzero(mask[-1])
        dx, dy, grow = xe.mean() - xs.mean(), ye.mean() - ys.mean(), mask[-1].sum() / mask[0].sum()
        expected = {
            "moving left": dx < -15,
            "moving right": dx > 15,
            "moving up": dy < -15,
            "moving down": dy > 15,
            "growing": grow > 2,
            "shrinking": grow < 0.5,
        }[s.spec.motion]
        assert expected, (s.spec, dx, dy, grow)
