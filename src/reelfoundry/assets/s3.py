"""S3Store: the ObjectStore on S3 or any S3-compatible server (MinIO, SeaweedFS, Ceph RGW, R2 …), with boto3.

boto3 is an optional dependency (``pip install 'reelfoundry[s3]'``), imported only when an S3 store is made.
Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, instance roles), never from ReelFoundry's settings.

Every request has connect and read timeouts and at most three attempts (botocore's standard retry mode), so
an unreachable store fails within seconds as :class:`StorageUnavailable`, never hangs. An upload is atomic:
a single PUT, or a multipart upload whose object appears only when it completes (a failed one is aborted).
"""

from __future__ import annotations

import contextlib
import mimetypes
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from reelfoundry.assets.objectstore import CHUNK, ObjectInfo, StorageUnavailable, check_key
from reelfoundry.errors import ConfigurationError

#: Files at least this big go up as multipart uploads, in parts of this size (boto3's own defaults).
MULTIPART_THRESHOLD = 8 * 1024 * 1024
MULTIPART_CHUNKSIZE = 8 * 1024 * 1024
#: Attempts per request (first try included), botocore's standard retry mode.
MAX_ATTEMPTS = 3
#: The longest a SigV4 presigned URL may live.
MAX_PRESIGN_S = 7 * 86400

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
# What could carry a secret in an error text: presigned query parameters, authorization headers.
_SECRETISH = re.compile(
    r"(X-Amz-(?:Signature|Credential|Security-Token)=|Signature=|AWSAccessKeyId=|Authorization:\s*)[^\s&\"']+",
    re.IGNORECASE,
)


def check_bucket(bucket: str) -> str:
    """``bucket`` if it is a valid S3 bucket name (3-63 of a-z 0-9 . -, no '..', not an address); else ValueError."""
    if not _BUCKET.match(bucket) or ".." in bucket or _IPV4.match(bucket):
        raise ValueError(
            f"invalid S3 bucket name {bucket!r} (3-63 lowercase letters, digits, '.' and '-', "
            "starting and ending with a letter or digit)"
        )
    return bucket


def check_prefix(prefix: str) -> str:
    """``prefix`` without its outer slashes, if empty or made of valid key segments; else ValueError."""
    prefix = prefix.strip("/")
    if prefix:
        try:
            check_key(prefix)
        except ValueError:
            raise ValueError(f"invalid S3 key prefix {prefix!r} (segments of A-Z a-z 0-9 . _ -)") from None
    return prefix


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise ConfigurationError(
            "S3 storage needs boto3: pip install 'reelfoundry[s3]' (or set storage_url to file://…)"
        ) from None
    return boto3


def content_disposition(filename: str) -> str:
    """An ``attachment`` Content-Disposition naming ``filename`` (RFC 6266: an ASCII fallback and UTF-8)."""
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


class S3Store:
    """Objects in one bucket, under an optional key prefix."""

    kind = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        addressing_style: Literal["path", "virtual", "auto"] = "path",
        timeout_s: float = 20.0,
        max_attempts: int = MAX_ATTEMPTS,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        multipart_chunksize: int = MULTIPART_CHUNKSIZE,
    ) -> None:
        self.bucket = check_bucket(bucket)
        self.prefix = check_prefix(prefix)
        self.endpoint_url = endpoint_url
        boto3 = _boto3()
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        config = Config(
            region_name=region,
            signature_version="s3v4",  # presigned URLs too (boto3 would presign with SigV2 for a custom endpoint)
            s3={"addressing_style": addressing_style},
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            retries={"mode": "standard", "max_attempts": max_attempts},
            max_pool_connections=16,
        )
        # A session of its own: boto3's default session is shared and not thread-safe to create clients from.
        self._client: Any = boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=multipart_chunksize, max_concurrency=4
        )

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket}/{self.prefix}, endpoint={self.endpoint_url or 'AWS'})"

    # -- the ObjectStore protocol --------------------------------------------------------------------------------

    def put_file(self, key: str, source: Path, content_type: str | None = None) -> ObjectInfo:
        name = self._name(key)
        if not source.is_file():
            raise FileNotFoundError(str(source))
        extra = {"ContentType": content_type or _guess_type(key)}
        with self._guard("upload", key):
            # Multipart above the threshold: the object appears only at CompleteMultipartUpload, and boto3
            # aborts the upload if a part fails, so readers see the old object or the whole new one.
            self._client.upload_file(str(source), self.bucket, name, ExtraArgs=extra, Config=self._transfer)
        source.unlink(missing_ok=True)  # only once stored: a failed upload leaves the caller its file to retry
        return self._info_after_put(key)

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> ObjectInfo:
        name = self._name(key)
        with self._guard("put", key):
            self._client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentType=content_type or _guess_type(key)
            )
        return self._info_after_put(key)

    def stat(self, key: str) -> ObjectInfo | None:
        name = self._name(key)
        try:
            with self._guard("stat", key):
                head = self._client.head_object(Bucket=self.bucket, Key=name)
        except FileNotFoundError:
            return None
        return ObjectInfo(key=key, size=int(head["ContentLength"]), modified=_utc(head["LastModified"]))

    def read_range(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        name = self._name(key)
        if start < 0 or (end is not None and end < start):
            # Nothing to read (S3 would ignore such a Range and send everything); still FileNotFoundError if absent.
            if self.stat(key) is None:
                raise FileNotFoundError(key)
            return iter(())
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": name}
        if start > 0 or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            with self._guard("read", key):
                response = self._client.get_object(**args)  # FileNotFoundError now, not at the first chunk
        except _RangeNotSatisfiable:
            return iter(())  # start at or past the end (or an empty object): no bytes, as from a file
        return self._stream(key, response["Body"])

    def read_bytes(self, key: str) -> bytes:
        return b"".join(self.read_range(key))

    def delete(self, key: str) -> None:
        name = self._name(key)
        with self._guard("delete", key):
            self._client.delete_object(Bucket=self.bucket, Key=name)  # S3 answers 204 for an absent key too

    def presign(self, key: str, expires_s: int, filename: str | None = None) -> str | None:
        name = self._name(key)
        if not 1 <= expires_s <= MAX_PRESIGN_S:
            raise ValueError(f"expires_s {expires_s} is not between 1 and {MAX_PRESIGN_S}")
        params = {"Bucket": self.bucket, "Key": name}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        with self._guard("presign", key):  # no request is made, but credentials are looked up
            url: str = self._client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=expires_s, HttpMethod="GET"
            )
        return url

    @contextlib.contextmanager
    def local_copy(self, key: str, scratch: Path) -> Iterator[Path]:
        name = self._name(key)
        scratch.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=scratch, prefix="s3-", suffix=Path(key).suffix)  # 0600 from the start
        path = Path(tmp)
        try:
            with os.fdopen(fd, "wb") as out, self._guard("download", key):
                self._client.download_fileobj(self.bucket, name, out, Config=self._transfer)
            yield path
        finally:
            path.unlink(missing_ok=True)

    # -- beyond the protocol --------------------------------------------------------------------------------------

    def ensure_bucket(self, create: bool = True) -> None:
        """Check that the bucket exists; create it if it does not and ``create`` (tests, development, or
        ``REELFOUNDRY_S3_CREATE_BUCKET``), else ConfigurationError."""
        try:
            with self._guard("check bucket", ""):
                self._client.head_bucket(Bucket=self.bucket)
            return
        except FileNotFoundError:
            if not create:
                raise ConfigurationError(
                    f"S3 bucket {self.bucket!r} does not exist: create it, or set REELFOUNDRY_S3_CREATE_BUCKET=true"
                ) from None
        region = self._client.meta.region_name
        args: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":  # us-east-1 refuses its own name as a location constraint
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            with self._guard("create bucket", ""):
                self._client.create_bucket(**args)
        except _BucketExists:
            pass  # made meanwhile by another process

    # -- helpers --------------------------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _info_after_put(self, key: str) -> ObjectInfo:
        info = self.stat(key)
        if info is None:  # S3 is read-after-write consistent; a store that is not is unusable here
            raise StorageUnavailable(f"object storage lost {key!r} right after storing it")
        return info

    def _stream(self, key: str, body: Any) -> Iterator[bytes]:
        with contextlib.closing(body), self._guard("read", key):
            yield from body.iter_chunks(CHUNK)

    @contextlib.contextmanager
    def _guard(self, action: str, key: str) -> Iterator[None]:
        """botocore's and boto3's errors as ours: absent → FileNotFoundError, anything else StorageUnavailable."""
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            cause = _client_error(exc, ClientError)
            if cause is not None:
                code = str(cause.response.get("Error", {}).get("Code", ""))
                status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if code in _NOT_FOUND or (status == 404 and code != "NoSuchBucket"):
                    raise FileNotFoundError(key or self.bucket) from None
                if code == "InvalidRange" or status == 416:
                    raise _RangeNotSatisfiable from None
                if code in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise _BucketExists from None
                reason = f"{code or 'error'} (HTTP {status})"
            else:
                reason = f"{type(exc).__name__}: {_one_line(str(exc))}"
            where = f"s3://{self.bucket}/{self._name(key) if key else ''}"
            raise StorageUnavailable(f"object storage: {action} {where} failed: {reason}") from None


class _RangeNotSatisfiable(Exception):
    pass


class _BucketExists(Exception):
    pass


def _client_error(exc: BaseException, client_error: type[Exception]) -> Any:
    """The ClientError ``exc`` is or wraps (boto3 wraps an upload's in S3UploadFailedError), if any."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, client_error):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _one_line(text: str) -> str:
    text = _SECRETISH.sub(r"\1…", " ".join(text.split()))
    return text if len(text) <= 300 else text[:299] + "…"


def _guess_type(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    raise StorageUnavailable(f"object storage answered a time that is not one: {value!r}")
