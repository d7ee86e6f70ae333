"""POST /v1/verify: a finished job's video verifies as Trusted; tampered, unsigned and bad uploads do not."""

from __future__ import annotations

from pathlib import Path

from server import Server, server_env, wait_state

from reelfoundry import __version__


def test_a_rendered_video_verifies_and_a_flipped_byte_does_not(server: Server) -> None:
    with server.client() as c:
        job = c.post("/v1/jobs", json={"prompt": "Signed", "model": "template", "num_frames": 12}).json()
        done = wait_state(c, job["id"], {"succeeded", "failed"})
        assert done["state"] == "succeeded", done
        video = c.get(f"/v1/assets/{done['asset_id']}/content").content
        mp4 = {"Content-Type": "video/mp4"}
        r = c.post("/v1/verify", content=video, headers=mp4)
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["valid"] and report["validation_state"] == "Trusted"
        assert report["claim_generator"] == f"reelfoundry/{__version__}"
        assert report["actions"][0]["action"] == "c2pa.created"
        assert report["manifests"][0]["assertions"]["com.reelfoundry.generation"]["job_id"] == job["id"]
        body = bytearray(video)
        body[body.find(b"mdat") + 64] ^= 0x01
        tampered = c.post("/v1/verify", content=bytes(body), headers=mp4).json()
        assert tampered["valid"] is False and tampered["validation_state"] == "Invalid"
        unsigned = c.post("/v1/verify", content=b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64, headers=mp4).json()
        assert unsigned["valid"] is False and unsigned["validation_state"] == "NoManifest"
    # The submission went into the audit log, chained after the bootstrap admin key's creation.
    from reelfoundry.store import Database, audit
    from reelfoundry.store.tables import AuditRow

    db = Database(f"sqlite:///{server.data_dir / 'reelfoundry.db'}")
    audit.Sealer(db, 1.0).seal_now()  # what the server wrote moments ago may still be pending
    try:
        with db.read() as session:
            assert audit.verify(session).ok
            actions = {(r.action, r.subject) for r in session.query(AuditRow)}
    finally:
        db.dispose()
    assert ("job.submitted", job["id"]) in actions and any(a == "key.created" for a, _ in actions)


def test_bad_verify_uploads_are_4xx_problems(server: Server) -> None:
    with server.client() as c:
        wrong_type = c.post("/v1/verify", content=b"hello", headers={"Content-Type": "text/plain"})
        assert wrong_type.status_code == 415 and wrong_type.headers["content-type"] == "application/problem+json"
        empty = c.post("/v1/verify", content=b"", headers={"Content-Type": "video/mp4"})
        assert empty.status_code == 400 and "empty" in empty.json()["detail"]


def test_verify_upload_over_the_limit_is_413(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data", server_env(max_verify_bytes=4096)).start()
    try:
        with srv.client() as c:
            r = c.post("/v1/verify", content=b"\x00" * 5000, headers={"Content-Type": "video/mp4"})
            assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    finally:
        srv.stop()
