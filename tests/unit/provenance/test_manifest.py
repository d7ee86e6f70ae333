"""C2PA signing and verification on real MP4s with the development CA (c2pa-python, no fakes)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from reelfoundry import __version__
from reelfoundry.media.encode import encode_mp4
from reelfoundry.provenance.credentials import CA_FILE, DEV_DIR, KEY_FILE, dev_credentials
from reelfoundry.provenance.manifest import (
    GENERATION_LABEL,
    REVIEW_LABEL,
    TRAINED_ALGORITHMIC,
    sign_mp4,
    sign_review,
    verify,
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("clip") / "clip.mp4"
    frames = [np.full((64, 64, 3), (20 * i, 80, 200), dtype=np.uint8) for i in range(8)]
    encode_mp4(frames, 8, out)
    return out


@pytest.fixture(scope="module")
def signed(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("data")
    out = data / "signed.mp4"
    facts = {"model": "builtin", "weights_sha256": "ab" * 32, "job_id": "job-1", "request_sha256": "cd" * 32}
    sign_mp4(clip, out, dev_credentials(data), title="clip.mp4", source_type=TRAINED_ALGORITHMIC, generation=facts)
    return out, data


def test_dev_credentials_are_made_once_with_a_private_key(tmp_path: Path) -> None:
    first = dev_credentials(tmp_path)
    assert stat.S_IMODE((tmp_path / DEV_DIR / KEY_FILE).stat().st_mode) == 0o600
    assert first.chain_pem.count(b"BEGIN CERTIFICATE") == 2  # leaf, then the CA that issued it
    assert dev_credentials(tmp_path) == first


def test_signed_clip_is_trusted_with_its_ca_and_says_how_it_was_made(signed: tuple[Path, Path]) -> None:
    path, data = signed
    report = verify(path, (data / DEV_DIR / CA_FILE).read_bytes())
    assert report.valid and report.trusted and report.validation_state == "Trusted"
    assert report.claim_generator == f"reelfoundry/{__version__}"
    assert [(a["action"], a["digitalSourceType"]) for a in report.actions] == [("c2pa.created", TRAINED_ALGORITHMIC)]
    assert report.manifests[0].assertions[GENERATION_LABEL]["job_id"] == "job-1"


def test_unknown_ca_is_valid_but_not_trusted(signed: tuple[Path, Path], tmp_path: Path) -> None:
    path, _ = signed
    assert verify(path).validation_state == "Valid"
    other = verify(path, dev_credentials(tmp_path).trust_anchor_pem)
    assert other.valid and not other.trusted
    assert "signingCredential.untrusted" in {f["code"] for f in other.failures}


def test_one_flipped_byte_in_the_media_data_is_invalid(signed: tuple[Path, Path], tmp_path: Path) -> None:
    path, data = signed
    body = bytearray(path.read_bytes())
    body[body.find(b"mdat") + 64] ^= 0x01
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(body))
    report = verify(bad, (data / DEV_DIR / CA_FILE).read_bytes())
    assert not report.valid and report.validation_state == "Invalid" and report.failures


def test_a_file_without_manifest_is_not_valid(clip: Path) -> None:
    report = verify(clip)
    assert not report.valid and report.validation_state == "NoManifest" and report.manifests == []


def test_cli_verify_exit_codes(signed: tuple[Path, Path], tmp_path: Path) -> None:
    path, data = signed

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "reelfoundry", "verify", *args, "--data-dir", str(data)]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    ok = run(str(path), "--json")
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["valid"] is True and report["validation_state"] == "Trusted"
    assert report["claim_generator"].startswith("reelfoundry/") and report["actions"][0]["action"] == "c2pa.created"
    body = bytearray(path.read_bytes())
    body[body.find(b"mdat") + 64] ^= 0x01
    (tmp_path / "bad.mp4").write_bytes(bytes(body))
    bad = run(str(tmp_path / "bad.mp4"), "--json")
    assert bad.returncode == 1 and json.loads(bad.stdout)["valid"] is False
    missing = run(str(tmp_path / "nope.mp4"))
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr


def test_the_review_manifest_chains_to_the_generation_and_tampering_breaks_it(
    signed: tuple[Path, Path], tmp_path: Path
) -> None:
    path, data = signed
    published = tmp_path / "published.mp4"
    review = {"decision": "approve", "reviewer_role": "reviewer", "comment_sha256": "ef" * 32, "reviewed_at": "t"}
    sign_review(path, published, dev_credentials(data), media_type="video/mp4", title="a.mp4", review=review)
    anchor = (data / DEV_DIR / CA_FILE).read_bytes()
    report = verify(published, anchor)
    assert report.trusted, report.failures
    assert [a["action"] for a in report.actions] == ["c2pa.opened", "c2pa.published"]
    top, parent = report.manifests
    assert top.assertions[REVIEW_LABEL] == review and top.ingredients == [parent.label]
    assert parent.assertions[GENERATION_LABEL]["job_id"] == "job-1"
    body = bytearray(published.read_bytes())
    body[body.find(b"mdat") + 64] ^= 0x01
    published.write_bytes(bytes(body))
    assert verify(published, anchor).validation_state == "Invalid"
