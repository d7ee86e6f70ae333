"""Onboarding: a well-behaved model passes; one that opens a socket, one with unpinned or pickle weights and one
whose output breaks the canonical format are refused, each by the check about it."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from reelfoundry.config import Settings
from reelfoundry.evaluation.nres import SUITE_VERSION
from reelfoundry.evaluation.onboarding import OnboardingReport, check_hosting, check_weights, onboard
from reelfoundry.schema import ModelCard
from reelfoundry.store.models import card_digest

HERE = Path(__file__).parent
CHECKS = [
    "weights",
    "hosting",
    "network",
    "generation",
    "canonical_format",
    "same_seed",
    "fidelity",
    "nres",
    "seconds_per_clip",
    "cost_per_clip",
]


@pytest.fixture(autouse=True)
def _backends_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))  # the spawned evaluation process inherits sys.path


def card(backend: str, model_id: str = "candidate", **extra: Any) -> ModelCard:
    from onboarding_backends import CARD

    return ModelCard.model_validate({**CARD, "id": model_id, "backend": f"onboarding_backends:{backend}", **extra})


def weights_dir(root: Path, pin: bool = True) -> tuple[Path, dict[str, str]]:
    """A weight directory: a safetensors file and a config, pinned (or not)."""
    root.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, str(root / "model.safetensors"))
    (root / "config.json").write_text('{"hidden": 3}')
    pins = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.iterdir()} if pin else {}
    return root, pins


def checks(report: OnboardingReport) -> dict[str, bool]:
    return {c.name: c.passed for c in report.checks}


def test_a_tidy_model_with_pinned_safetensors_passes_every_check(tmp_path: Path) -> None:
    root, pins = weights_dir(tmp_path / "w")
    tidy = card("Tidy", options={"path": str(root), "sha256": pins})
    report = onboard(tidy, Settings(data_dir=tmp_path / "data"))
    assert [c.name for c in report.checks] == CHECKS
    assert report.passed, report.failed
    assert report.card_sha256 == card_digest(tidy) and report.suite_version == SUITE_VERSION
    assert report.nres is not None and report.nres["clips"] == 8 and report.nres["network_attempts"] == []
    assert "2 files pinned and matching; 1 safetensors" in report.checks[0].detail
    assert len(report.posters) == 4
    assert report.to_json()["checks"][0] == {
        "name": "weights",
        "group": "security",
        "passed": True,
        "detail": report.checks[0].detail,
    }


def test_a_model_that_opens_a_socket_is_refused(tmp_path: Path) -> None:
    report = onboard(card("PhonesHome"), Settings(data_dir=tmp_path))
    assert not report.passed
    assert checks(report) == {name: name != "network" for name in CHECKS}
    network = report.checks[CHECKS.index("network")]
    assert "connect to ('127.0.0.1', 9)" in network.detail
    assert report.nres is not None and len(report.nres["network_attempts"]) == 9  # 8 clips and the repeat


def test_output_that_breaks_the_canonical_format_is_refused(tmp_path: Path) -> None:
    report = onboard(card("WrongSize"), Settings(data_dir=tmp_path))
    assert not report.passed and not checks(report)["canonical_format"]
    assert checks(report)["generation"] and checks(report)["same_seed"] and checks(report)["network"]
    detail = report.checks[CHECKS.index("canonical_format")].detail
    assert "80×64" in detail and "asked for video/mp4 h264 16 frames 64×64 at 8 fps" in detail


def test_a_model_that_ignores_the_seed_is_refused(tmp_path: Path) -> None:
    report = onboard(card("IgnoresSeed"), Settings(data_dir=tmp_path))
    assert not report.passed
    assert [c.name for c in report.failed] == ["same_seed"]
    assert "mean absolute difference" in report.failed[0].detail


@pytest.mark.parametrize(
    ("layout", "finding"),
    [
        ("pickle-bin", "model.bin is a pickle"),
        ("pickle-disguised", "model.safetensors is a pickle"),
        ("torch-zip", "weights.pt is a pickle"),
        ("unpinned", "model.safetensors is not pinned in options.sha256"),
        ("tampered", "model.safetensors does not match its pinned sha256"),
        ("missing", "gone.safetensors is pinned but missing"),
    ],
)
def test_pickle_or_unpinned_weights_are_refused_before_anything_runs(tmp_path: Path, layout: str, finding: str) -> None:
    root, pins = weights_dir(tmp_path / "w")
    if layout == "pickle-bin":
        (root / "model.bin").write_bytes(pickle.dumps({"w": [1, 2, 3]}))
        pins["model.bin"] = hashlib.sha256((root / "model.bin").read_bytes()).hexdigest()
    elif layout == "pickle-disguised":
        (root / "model.safetensors").write_bytes(pickle.dumps({"w": [1, 2, 3]}, protocol=4))
        pins["model.safetensors"] = hashlib.sha256((root / "model.safetensors").read_bytes()).hexdigest()
    elif layout == "torch-zip":
        (root / "weights.pt").write_bytes(b"PK\x03\x04" + b"\0" * 60)
    elif layout == "unpinned":
        del pins["model.safetensors"]
    elif layout == "tampered":
        (root / "model.safetensors").write_bytes((root / "model.safetensors").read_bytes() + b" ")
    elif layout == "missing":
        pins["gone.safetensors"] = "0" * 64
    report = onboard(card("PhonesHome", options={"path": str(root), "sha256": pins}), Settings(data_dir=tmp_path))
    assert not report.passed and report.nres is None  # the model never ran: a pickle runs code when loaded
    weights = report.checks[0]
    assert weights.name == "weights" and not weights.passed and finding in weights.detail
    assert [c.name for c in report.checks] == ["weights", "hosting", "network", "generation"]
    assert report.checks[2].detail == "not run: the weights check failed"


def test_weights_must_be_a_local_directory_and_template_has_none(tmp_path: Path) -> None:
    hub = check_weights(card("Tidy", options={"path": "owner/model"}))
    assert not hub.passed and "not a local directory" in hub.detail
    none = check_weights(card("Tidy"))
    assert none.passed and none.detail == "the card names no weight files (options.path)"
    root, pins = weights_dir(tmp_path / "w")
    (root / "card.json").write_text("{}")  # the card beside its weights is not a weight file
    assert check_weights(card("Tidy", options={"path": str(root), "sha256": pins})).passed


def test_hosting_and_data_classes_must_agree() -> None:
    assert check_hosting(card("Tidy")).passed
    self_hosted_vendor = card("Tidy").model_copy(update={"backend": "replicate"})
    assert "hosting says self-hosted" in check_hosting(self_hosted_vendor).detail
    vendor = ModelCard.model_validate(
        {
            **card("Tidy").model_dump(mode="json", exclude={"data_classes"}),
            "backend": "fal",
            "hosting": {"vendor": "replicate", "region": "us"},
            "price_usd_per_video_second": "0.05",
        }
    )
    mismatch = check_hosting(vendor)
    assert not mismatch.passed and "hosting names replicate, but backend fal" in mismatch.detail
    assert check_hosting(vendor.model_copy(update={"backend": "replicate"})).passed


def test_a_card_whose_backend_cannot_be_made_gets_a_report_not_a_crash(tmp_path: Path) -> None:
    report = onboard(card("NoSuchBackend"), Settings(data_dir=tmp_path))
    assert not report.passed and report.nres is None
    generation = report.checks[-1]
    assert generation.name == "generation" and "cannot be imported" in generation.detail
