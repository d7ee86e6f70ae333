"""The ObjectStore contract, on both implementations: LocalStore (a directory) and S3Store (a real SeaweedFS).

Then what only S3 has: presigned URLs, multipart uploads, and outages — an unreachable or silent server, or
one that goes away mid-upload — each a quick, retryable StorageUnavailable that leaves no half-written object.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat as statmod
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from seaweed import BUCKET, SeaweedFS
from tcpproxy import FaultyProxy

from reelfoundry.assets.objectstore import LocalStore, ObjectStore, StorageUnavailable
from reelfoundry.assets.s3 import S3Store
from reelfoundry.assets.stores import make_store
from reelfoundry.config import Settings
from reelfoundry.errors import ConfigurationError

pytestmark = [pytest.mark.scaleout, pytest.mark.slow]  # a real S3 server (SeaweedFS) for the session

MiB = 1024 * 1024
BAD_KEYS = ["", "/abs", "../up", "a/../b", "a//b", "a/", "a b", ".hidden", "a/./b", "é", "a?b", "x" * 1025]


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "media")
    server: SeaweedFS = request.getfixturevalue("seaweedfs")
    return S3Store(BUCKET, request.getfixturevalue("s3_prefix"), endpoint_url=server.endpoint, timeout_s=10)


@pytest.fixture
def s3(seaweedfs: SeaweedFS, s3_prefix: str) -> S3Store:
    return S3Store(BUCKET, s3_prefix, endpoint_url=seaweedfs.endpoint, timeout_s=10)


def _file(tmp_path: Path, data: bytes, name: str = "source.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _read(store: ObjectStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(store.read_range(key, start, end))


# -- the shared contract -----------------------------------------------------------------------------------------


def test_put_file_takes_the_source_and_stat_tells_its_size(store: ObjectStore, tmp_path: Path) -> None:
    source = _file(tmp_path, b"\x00video\xff" * 1000)
    before = datetime.now(UTC) - timedelta(minutes=1)
    info = store.put_file("outputs/job1/video.mp4", source, "video/mp4")
    assert not source.exists()
    assert info.key == "outputs/job1/video.mp4" and info.size == 7000
    assert before <= info.modified <= datetime.now(UTC) + timedelta(minutes=1)
    assert store.stat("outputs/job1/video.mp4") == info
    assert store.read_bytes("outputs/job1/video.mp4") == b"\x00video\xff" * 1000


def test_put_bytes_then_overwrite(store: ObjectStore) -> None:
    assert store.put_bytes("posters/p.png", b"first", "image/png").size == 5
    assert store.read_bytes("posters/p.png") == b"first"
    assert store.put_bytes("posters/p.png", b"second, longer").size == 14
    assert store.read_bytes("posters/p.png") == b"second, longer"
    info = store.stat("posters/p.png")
    assert info is not None and info.size == 14


@pytest.mark.parametrize(
    ("start", "end", "want"),
    [
        (0, None, slice(None)),
        (0, 0, slice(0, 1)),
        (5, 9, slice(5, 10)),
        (10_000, None, slice(10_000, None)),
        (10_239, 10_239, slice(10_239, None)),
        (100, 99_999, slice(100, None)),  # an end past the last byte stops at the last byte
        (10_240, None, slice(0, 0)),  # a start at the end: nothing
        (20_000, 30_000, slice(0, 0)),
        (7, 6, slice(0, 0)),  # end before start: nothing
    ],
)
def test_read_range_is_inclusive_and_clipped(store: ObjectStore, start: int, end: int | None, want: slice) -> None:
    data = bytes(range(256)) * 40  # 10 240 bytes
    store.put_bytes("r/data.bin", data)
    assert _read(store, "r/data.bin", start, end) == data[want]


def test_empty_object(store: ObjectStore) -> None:
    assert store.put_bytes("e/empty", b"").size == 0
    assert store.read_bytes("e/empty") == b""
    assert _read(store, "e/empty", 0, 10) == b""
    assert _read(store, "e/empty", 3) == b""


def test_read_range_streams_in_chunks(store: ObjectStore) -> None:
    data = os.urandom(3 * MiB + 17)
    store.put_bytes("big/chunked.bin", data)
    chunks = list(store.read_range("big/chunked.bin", 1, 3 * MiB))
    assert len(chunks) > 1 and b"".join(chunks) == data[1 : 3 * MiB + 1]


def test_a_missing_object(store: ObjectStore, tmp_path: Path) -> None:
    assert store.stat("nope/x.mp4") is None
    with pytest.raises(FileNotFoundError):
        store.read_range("nope/x.mp4")  # at the call, not at the first chunk
    with pytest.raises(FileNotFoundError):
        store.read_range("nope/x.mp4", 5, 4)
    with pytest.raises(FileNotFoundError):
        store.read_bytes("nope/x.mp4")
    with pytest.raises(FileNotFoundError), store.local_copy("nope/x.mp4", tmp_path / "scratch"):
        pass
    assert not (tmp_path / "scratch").exists() or not any((tmp_path / "scratch").iterdir())


def test_delete_is_idempotent(store: ObjectStore) -> None:
    store.put_bytes("d/x", b"x")
    store.delete("d/x")
    assert store.stat("d/x") is None
    store.delete("d/x")
    store.delete("d/never-was")


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_are_refused(store: ObjectStore, tmp_path: Path, key: str) -> None:
    source = _file(tmp_path, b"x")
    calls: list[Callable[[], Any]] = [
        lambda: store.put_file(key, source),
        lambda: store.put_bytes(key, b"x"),
        lambda: store.stat(key),
        lambda: store.read_range(key),
        lambda: store.read_bytes(key),
        lambda: store.delete(key),
        lambda: store.local_copy(key, tmp_path).__enter__(),
    ]
    if isinstance(store, S3Store):  # LocalStore.presign answers None without looking at the key
        calls.append(lambda: store.presign(key, 60))
    for call in calls:
        with pytest.raises(ValueError, match="invalid storage key"):
            call()
    assert source.exists()


def test_local_copy(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("c/video.mp4", b"mp4 bytes" * 100)
    scratch = tmp_path / "scratch"
    with store.local_copy("c/video.mp4", scratch) as path:
        assert path.read_bytes() == b"mp4 bytes" * 100
        copied = isinstance(store, S3Store)
        if copied:  # a private temporary file under scratch, with the key's suffix (tools look at it)
            assert path.parent == scratch and path.suffix == ".mp4"
            assert statmod.S_IMODE(path.stat().st_mode) == 0o600
    assert path.exists() != copied  # the copy is gone after; the local store's own file stays
    if copied:
        assert list(scratch.iterdir()) == []


def test_a_failed_put_leaves_the_old_object(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("o/video.mp4", b"old")
    with pytest.raises(FileNotFoundError):
        store.put_file("o/video.mp4", tmp_path / "missing-source.mp4")
    assert store.read_bytes("o/video.mp4") == b"old"


def test_readers_during_overwrites_see_one_whole_version(store: ObjectStore) -> None:
    versions = [b"a" * (MiB + 1), b"b" * (MiB // 2)]
    store.put_bytes("w/x.bin", versions[0])
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for i in range(8):
                store.put_bytes("w/x.bin", versions[(i + 1) % 2])
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not stop.is_set():
        data = store.read_bytes("w/x.bin")
        assert data in versions, f"a reader saw {len(data)} bytes, neither version"
        reads += 1
    thread.join()
    assert not errors, errors
    assert reads > 1


def test_a_large_file_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(20 * MiB + 123)  # above the multipart threshold: three parts on S3
    digest = hashlib.sha256(data).hexdigest()
    source = _file(tmp_path, data, "big.mp4")
    assert store.put_file("big/video.mp4", source).size == 20 * MiB + 123
    streamed = hashlib.sha256()
    for chunk in store.read_range("big/video.mp4"):
        streamed.update(chunk)
    assert streamed.hexdigest() == digest
    with store.local_copy("big/video.mp4", tmp_path / "scratch") as path:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    assert _read(store, "big/video.mp4", 8 * MiB - 2, 8 * MiB + 1) == data[8 * MiB - 2 : 8 * MiB + 2]  # across parts
    if isinstance(store, S3Store):
        head = store._client.head_object(Bucket=BUCKET, Key=f"{store.prefix}/big/video.mp4")
        assert head["ETag"].strip('"').endswith("-3"), head["ETag"]  # it went up as a 3-part multipart upload
        assert head["ContentType"] == "video/mp4"  # guessed from the key


def test_presign(store: ObjectStore) -> None:
    store.put_bytes("p/video.mp4", b"0123456789")
    url = store.presign("p/video.mp4", 60, filename="Clip «1».mp4")
    if isinstance(store, LocalStore):
        assert url is None  # the API serves local files itself
        return
    assert url is not None and "X-Amz-Signature=" in url
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == b"0123456789"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"Clip _1_.mp4\"; filename*=UTF-8''Clip%20%C2%AB1%C2%BB.mp4"
    )
    ranged = httpx.get(url, headers={"Range": "bytes=2-4"})  # video players seek with ranges
    assert ranged.status_code == 206 and ranged.content == b"234"
    plain = store.presign("p/video.mp4", 60)
    assert plain is not None and "content-disposition" not in httpx.get(plain).headers
    assert httpx.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403


def test_a_presigned_url_expires(s3: S3Store) -> None:
    s3.put_bytes("p/video.mp4", b"x")
    url = s3.presign("p/video.mp4", 1)
    assert url is not None and httpx.get(url).status_code == 200
    time.sleep(2.2)
    assert httpx.get(url).status_code == 403
    with pytest.raises(ValueError, match="expires_s"):
        s3.presign("p/video.mp4", 0)
    with pytest.raises(ValueError, match="expires_s"):
        s3.presign("p/video.mp4", 8 * 86400)


# -- outages: quick, retryable, nothing half-written -------------------------------------------------------------


@pytest.fixture
def proxy(seaweedfs: SeaweedFS) -> Iterator[FaultyProxy]:
    p = FaultyProxy(seaweedfs.ports["s3"])
    yield p
    p.close()


def _outage(call: Callable[[], Any], within_s: float) -> StorageUnavailable:
    began = time.monotonic()
    with pytest.raises(StorageUnavailable) as caught:
        call()
    assert time.monotonic() - began < within_s
    error = caught.value
    assert error.status == 503 and error.recoverable and error.headers()["Retry-After"]
    assert "\n" not in error.detail and error.detail.startswith("object storage: ")
    secret = os.environ["AWS_SECRET_ACCESS_KEY"]
    assert secret not in error.detail and secret not in str(error) and os.environ["AWS_ACCESS_KEY_ID"] not in str(error)
    return error


def _every_call(store: S3Store, tmp_path: Path) -> list[Callable[[], Any]]:
    source = _file(tmp_path, b"new bytes", "outage-source.bin")
    return [
        lambda: store.put_file("o/video.mp4", source),
        lambda: store.put_bytes("o/video.mp4", b"new"),
        lambda: store.stat("o/video.mp4"),
        lambda: store.read_range("o/video.mp4"),
        lambda: store.read_bytes("o/video.mp4"),
        lambda: store.delete("o/video.mp4"),
        lambda: store.local_copy("o/video.mp4", tmp_path / "scratch").__enter__(),
        lambda: store.ensure_bucket(create=False),
    ]


def test_a_server_that_goes_down_and_comes_back(
    seaweedfs: SeaweedFS, proxy: FaultyProxy, s3_prefix: str, tmp_path: Path
) -> None:
    store = S3Store(BUCKET, s3_prefix, endpoint_url=proxy.endpoint, timeout_s=2, max_attempts=1)  # one try: quick
    store.put_bytes("o/video.mp4", b"old")
    proxy.refuse()
    for call in _every_call(store, tmp_path):
        error = _outage(call, within_s=5)
        assert f"s3://{BUCKET}/" in error.detail
    assert (tmp_path / "outage-source.bin").exists()  # a failed put_file leaves its source to retry with
    assert list((tmp_path / "scratch").iterdir()) == []  # nor a temp file of a failed local copy
    proxy.restore()  # retrying later works: the error was worth retrying
    assert store.read_bytes("o/video.mp4") == b"old"
    store.put_file("o/video.mp4", tmp_path / "outage-source.bin")
    assert store.read_bytes("o/video.mp4") == b"new bytes"


def test_an_upload_cut_midway_leaves_no_half_written_object(
    seaweedfs: SeaweedFS, proxy: FaultyProxy, s3_prefix: str, tmp_path: Path
) -> None:
    direct = S3Store(BUCKET, s3_prefix, endpoint_url=seaweedfs.endpoint)
    via = S3Store(BUCKET, s3_prefix, endpoint_url=proxy.endpoint, timeout_s=2)
    direct.put_bytes("o/video.mp4", b"the old, complete video")
    source = _file(tmp_path, os.urandom(20 * MiB), "new.mp4")
    proxy.cut_after(10 * MiB)  # the first part may get through; the network dies during the second
    _outage(lambda: via.put_file("o/video.mp4", source), within_s=30)
    assert source.exists()  # still there to retry with
    assert direct.read_bytes("o/video.mp4") == b"the old, complete video"
    listed = seaweedfs.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{s3_prefix}/")
    assert [o["Key"] for o in listed.get("Contents", [])] == [f"{s3_prefix}/o/video.mp4"]
    _outage(lambda: via.put_file("o/fresh.mp4", source), within_s=10)  # a new key: not created at all
    assert direct.stat("o/fresh.mp4") is None


def test_a_server_that_is_not_there_fails_at_once(s3_prefix: str, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3Store(BUCKET, s3_prefix, endpoint_url=f"http://127.0.0.1:{port}", timeout_s=2)  # three tries
    error = _outage(lambda: store.read_bytes("o/video.mp4"), within_s=10)
    assert "EndpointConnectionError" in error.detail and f"127.0.0.1:{port}" in error.detail


def test_a_server_that_never_answers_times_out(seaweedfs: SeaweedFS, s3_prefix: str, tmp_path: Path) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections (the backlog) and says nothing
    try:
        store = S3Store(BUCKET, s3_prefix, endpoint_url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout_s=0.5)
        error = _outage(lambda: store.stat("o/video.mp4"), within_s=10)
        assert "Timeout" in error.detail
    finally:
        silent.close()


def test_bad_keys_are_refused_before_any_request(tmp_path: Path) -> None:
    store = S3Store(BUCKET, "p", endpoint_url="http://127.0.0.1:9", timeout_s=0.5)  # any request would fail
    for key in BAD_KEYS:
        for call in _every_call_with_key(store, key, tmp_path):
            with pytest.raises(ValueError, match="invalid storage key"):
                call()


def _every_call_with_key(store: S3Store, key: str, tmp_path: Path) -> list[Callable[[], Any]]:
    return [
        lambda: store.put_file(key, tmp_path),
        lambda: store.put_bytes(key, b"x"),
        lambda: store.stat(key),
        lambda: store.read_range(key),
        lambda: store.read_bytes(key),
        lambda: store.delete(key),
        lambda: store.presign(key, 60),
        lambda: store.local_copy(key, tmp_path).__enter__(),
    ]


# -- settings and the factory --------------------------------------------------------------------------------------


def test_make_store_from_settings(seaweedfs: SeaweedFS, s3_prefix: str, tmp_path: Path) -> None:
    local = make_store(Settings(data_dir=tmp_path / "data"))
    assert isinstance(local, LocalStore) and local.root == (tmp_path / "data" / "media").resolve()
    other = make_store(Settings(storage_url=f"file://{tmp_path / 'elsewhere'}"))
    assert isinstance(other, LocalStore) and other.root == (tmp_path / "elsewhere").resolve()

    store = make_store(Settings(storage_url=f"s3://{BUCKET}/{s3_prefix}/media/", s3_endpoint_url=seaweedfs.endpoint))
    assert isinstance(store, S3Store) and store.kind == "s3" and store.prefix == f"{s3_prefix}/media"
    store.put_bytes("k/x.txt", b"via settings")
    head = seaweedfs.client().get_object(Bucket=BUCKET, Key=f"{s3_prefix}/media/k/x.txt")
    assert head["Body"].read() == b"via settings"


def test_a_missing_bucket(seaweedfs: SeaweedFS, s3_prefix: str) -> None:
    bucket = f"rf-{s3_prefix}"
    store = S3Store(bucket, endpoint_url=seaweedfs.endpoint)
    with pytest.raises(ConfigurationError, match="S3_CREATE_BUCKET"):
        store.ensure_bucket(create=False)  # serve's check: never made silently
    with pytest.raises(StorageUnavailable):  # SeaweedFS: InternalError (HTTP 500); AWS: NoSuchBucket (404)
        store.put_bytes("x", b"x")
    made = make_store(Settings(storage_url=f"s3://{bucket}", s3_endpoint_url=seaweedfs.endpoint, s3_create_bucket=True))
    made.put_bytes("x", b"x")
    assert store.read_bytes("x") == b"x"
    store.ensure_bucket(create=True)  # already there: fine
