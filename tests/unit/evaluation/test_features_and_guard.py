"""Pluggable feature extractors (a TorchScript file, a VideoMAE checkpoint directory) and what the network guard
refuses or lets through (its decision function; the hook itself is exercised by the onboarding tests)."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from reelfoundry.errors import InvalidParameter
from reelfoundry.evaluation.features import load_extractor
from reelfoundry.evaluation.netguard import _describe

CLIPS = np.random.default_rng(0).integers(0, 256, (3, 16, 64, 64, 3), dtype=np.uint8)


class _Pool(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3, 4)), x.amax(dim=(2, 3, 4))], dim=1)


def test_a_torchscript_file_is_a_feature_extractor(tmp_path: Path) -> None:
    path = tmp_path / "i3d.pt"
    torch.jit.script(_Pool()).save(str(path))
    extractor, name = load_extractor(path)
    assert name == "torchscript:i3d.pt"
    features = extractor(CLIPS)
    assert features.shape == (3, 6) and np.all(features[:, 3:] >= features[:, :3])
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(InvalidParameter, match="not a TorchScript video model"):
        load_extractor(junk)


def test_a_videomae_checkpoint_directory_is_a_feature_extractor(tmp_path: Path) -> None:
    from transformers import VideoMAEConfig, VideoMAEModel

    torch.manual_seed(0)
    config = VideoMAEConfig(
        image_size=32,
        patch_size=16,
        num_frames=4,
        tubelet_size=2,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
    )
    VideoMAEModel(config).save_pretrained(str(tmp_path / "videomae"), safe_serialization=True)
    extractor, name = load_extractor(tmp_path / "videomae")
    assert name == "videomae:videomae"
    features = extractor(CLIPS)
    assert features.shape == (3, 32) and np.isfinite(features).all()
    assert not np.allclose(features[0], features[1])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(InvalidParameter, match="model_type 'bert' is not a video feature extractor"):
        load_extractor(tmp_path / "other")


def test_the_guard_refuses_the_network_and_programs_but_not_local_ipc() -> None:
    inet = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        assert _describe("socket.connect", (inet, ("127.0.0.1", 9))) == "connect to ('127.0.0.1', 9)"
        assert _describe("socket.sendto", (inet, ("8.8.8.8", 53))) == "sendto to ('8.8.8.8', 53)"
        assert _describe("socket.bind", (inet, ("0.0.0.0", 8080))) == "bind to ('0.0.0.0', 8080)"
        assert _describe("socket.bind", (inet, ("127.0.0.1", 0))) is None  # a loopback bind is no connection
        assert _describe("socket.connect", (unix, "/tmp/sock")) is None
        assert _describe("socket.getaddrinfo", ("example.com", 443, 0, 0, 0)) == "getaddrinfo of 'example.com'"
        assert _describe("subprocess.Popen", ("curl", ["curl", "x"], None, None)) == "subprocess.Popen of 'curl'"
        assert _describe("subprocess.Popen", ("/sbin/ldconfig", ["/sbin/ldconfig", "-p"], None, None)) is None
        assert _describe("os.system", (b"wget x",)) == "os.system of \"b'wget x'\""
        assert _describe("open", ("/etc/hosts", "r", 0)) is None
    finally:
        inet.close()
        unix.close()
