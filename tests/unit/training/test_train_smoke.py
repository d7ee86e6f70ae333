"""Two training steps, a resume, a compact checkpoint, an export: the whole loop on a tiny model."""

from __future__ import annotations

from pathlib import Path

import torch

from reelfoundry.models.builtin import builtin_card, export
from reelfoundry.training.builtin import TrainConfig, compact_checkpoint, ema_pipeline, loss_curve, train

TINY = {"hidden_dim": 32, "depth": 1, "heads": 2, "patch_t": 4, "patch_size": 16}


def test_train_resume_compact_export(tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = TrainConfig(steps=2, batch_size=2, warmup=1, model=dict(TINY))
    train(run, cfg)
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2 and len(state["losses"]) == 2
    train(run, TrainConfig(steps=3, batch_size=2, warmup=1, model=dict(TINY)))
    assert torch.load(run / "checkpoint.pt", weights_only=False)["step"] == 3
    compact = tmp_path / "compact" / "checkpoint.pt"
    compact.parent.mkdir()
    compact_checkpoint(run / "checkpoint.pt", compact)
    assert "opt" not in torch.load(compact, weights_only=False)
    train(compact.parent, TrainConfig(steps=4, batch_size=2, warmup=1, model=dict(TINY)))
    assert torch.load(compact, weights_only=False)["step"] == 4
    assert (run / "train_log.jsonl").exists()
    loss_curve(run / "checkpoint.pt", tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    out = export(ema_pipeline(run / "checkpoint.pt"), tmp_path / "export", {"steps": 3})
    card = builtin_card(out)
    assert card is not None and card.id == "builtin"


def test_a_run_grows_a_refiner_that_starts_as_a_no_op(tmp_path: Path) -> None:
    """Resuming with an option the checkpoint lacks adds that part; its zero-initialised output changes nothing."""
    from reelfoundry.models.video_dit import VideoDiT

    run = tmp_path / "run"
    train(run, TrainConfig(steps=1, batch_size=2, warmup=1, model=dict(TINY)))
    before = ema_pipeline(run / "checkpoint.pt").transformer
    grown = VideoDiT(**{**TINY, "refiner_channels": 4})
    grown.load_state_dict(before.state_dict(), strict=False)
    args = (torch.randn(2, 3, 16, 64, 64), torch.tensor([900.0, 300.0]), torch.randn(2, 5, 384))
    text = (torch.ones(2, 5, dtype=torch.bool), torch.randn(2, 384))
    with torch.no_grad():
        assert torch.equal(before(*args, *text), grown.eval()(*args, *text))
    train(run, TrainConfig(steps=2, batch_size=2, warmup=1, model={**TINY, "refiner_channels": 4}))
    state = torch.load(run / "checkpoint.pt", weights_only=False)
    assert state["step"] == 2 and state["config"]["model"]["refiner_channels"] == 4
    assert any(k.startswith("refiner.") for k in state["ema"])
    assert ema_pipeline(run / "checkpoint.pt").transformer.refiner is not None


def test_refiner_features_grow_into_a_refined_run_as_a_no_op(tmp_path: Path) -> None:
    """Per-pixel token features for the refiner start unread: outputs stay exactly the same until trained."""
    from reelfoundry.models.video_dit import VideoDiT

    torch.manual_seed(0)
    refined = VideoDiT(**{**TINY, "refiner_channels": 4}).eval()
    for param in refined.refiner.parameters():  # type: ignore[union-attr]
        torch.nn.init.normal_(param, std=0.1)  # as if trained
    grown = VideoDiT(**{**TINY, "refiner_channels": 4, "refiner_features": 3}).eval()
    missing = grown.load_state_dict(refined.state_dict(), strict=False).missing_keys
    assert sorted(missing) == [
        "refiner_features_in.bias",
        "refiner_features_in.weight",
        "refiner_head.bias",
        "refiner_head.weight",
    ]
    args = (torch.randn(2, 3, 16, 64, 64), torch.tensor([900.0, 300.0]), torch.randn(2, 5, 384))
    text = (torch.ones(2, 5, dtype=torch.bool), torch.randn(2, 384))
    with torch.no_grad():
        assert torch.equal(refined(*args, *text), grown(*args, *text))
    cfg = {**TINY, "refiner_channels": 4, "refiner_features": 3}
    train(tmp_path / "run", TrainConfig(steps=2, batch_size=2, warmup=1, model=cfg))
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    assert state["ema"]["refiner_features_in.weight"].abs().sum() > 0  # it learns


def test_refiner_features_need_a_refiner() -> None:
    import pytest

    from reelfoundry.models.video_dit import VideoDiT

    with pytest.raises(ValueError, match="refiner_features"):
        VideoDiT(**{**TINY, "refiner_features": 2})


def test_training_noise_levels_match_the_sampler(tmp_path: Path) -> None:
    """Training draws σ with the shift the exported pipeline's scheduler samples with, and a resume keeps it."""
    from reelfoundry.models.pipeline_builtin import SIGMA_SHIFT, new_pipeline

    assert TrainConfig().sigma_shift == SIGMA_SHIFT == new_pipeline(**TINY).scheduler.config.shift
    run = tmp_path / "run"
    train(run, TrainConfig(steps=1, batch_size=2, warmup=1, sigma_shift=3.0, model=dict(TINY)))
    train(run, TrainConfig(steps=2, batch_size=2, warmup=1, model=dict(TINY)))  # default shift: the run's wins
    assert torch.load(run / "checkpoint.pt", weights_only=False)["config"]["sigma_shift"] == 3.0
    assert ema_pipeline(run / "checkpoint.pt").scheduler.config.shift == 3.0


def test_noise_levels_cover_where_sampling_starts_and_ends() -> None:
    """The shifted logit-normal alone almost never draws σ near 1 or below 0.3; the mixture does."""
    from reelfoundry.training.builtin import _sigmas

    torch.manual_seed(0)
    cfg = TrainConfig()
    sigma = _sigmas(cfg, cfg.sigma_shift, 20_000)
    assert sigma.min() >= 0 and sigma.max() <= 1
    assert abs((sigma == 1).float().mean().item() - cfg.pure_noise) < 0.01
    assert (sigma < 0.3).float().mean() > 0.8 * cfg.uniform_sigma * 0.3
    plain = _sigmas(TrainConfig(uniform_sigma=0, pure_noise=0), cfg.sigma_shift, 20_000)
    assert (plain == 1).sum() == 0 and (plain < 0.3).float().mean() < 0.01


def test_object_pixels_weigh_more_in_the_loss() -> None:
    import numpy as np

    from reelfoundry.training.builtin import _batch
    from reelfoundry.training.data import COLOURS, sample

    cfg = TrainConfig(batch_size=2, caption_dropout=0.0)
    clips, weights, captions = _batch(cfg, 0, np.random.default_rng(0))
    assert clips.shape == (2, 3, 16, 64, 64) and weights.shape == (2, 1, 16, 64, 64) and all(captions)
    s = sample(cfg.data_seed, 0)
    obj = np.abs(s.clip.astype(int) - COLOURS[s.spec.colour]).sum(-1) < 30  # solidly object-coloured pixels
    w = weights[0, 0].numpy()
    assert (w[obj] == 1 + cfg.object_weight).all()
    assert 0.02 < (w > 1).mean() < 0.2 and w.min() == 1


def test_diagnostics_draw_both_panels(tmp_path: Path) -> None:
    from PIL import Image

    from reelfoundry.training.diagnostics import CONTRAST_PROMPTS, main

    train(tmp_path, TrainConfig(steps=1, batch_size=2, warmup=1, model=dict(TINY)))
    main([str(tmp_path / "checkpoint.pt"), "--raw", "--out", str(tmp_path / "diag.png")])
    width, height = Image.open(tmp_path / "diag.png").size
    # 4 prompts + 3 real clips, 64 px rows, an 8 px gap, drawn at 2×
    assert height == 2 * (64 * (len(CONTRAST_PROMPTS) + 3) + 8) and width >= 2 * 64 * 6
