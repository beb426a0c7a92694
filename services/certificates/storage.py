"""Where certificate files (PDFs, PNG previews) live, behind one small interface.

``CERTIFICATES_STORAGE`` chooses: ``local`` (default), files in a directory under
``VAR_DIR``; or ``s3``, objects in a bucket of any S3-compatible store (AWS S3, MinIO,
Ceph, OSS, COS, ...), with the standard AWS credentials (``AWS_ACCESS_KEY_ID``, ...).

Keys are flat names such as ``cert_0123456789abcdef0123.pdf``; anything that could
escape the storage (slashes, ``..``, hidden names) is refused.

``check_writable()`` says, before a PDF is rendered, whether the storage can take a file
now: a render costs far more than the check, and a storage that is down would otherwise
cost a render on every retry of every certificate waiting for it (issue 20).
"""
from __future__ import annotations

import mimetypes
import os
import re
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from diandian_common import config

_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")
STORAGE_KINDS = ("local", "s3")
ADDRESSING_STYLES = ("auto", "path", "virtual")


def check_key(key: str) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"invalid storage key {key!r}")
    return key


class StorageUnavailable(OSError):
    """The storage could not be reached or answered with an error; worth another try."""


def min_free_bytes() -> int:
    """Free space below which a local storage takes no new file (``CERTIFICATES_STORAGE_MIN_FREE_MB``):
    the databases, Redis's append-only file and the logs often share the disk, and must not
    be the ones to find it full."""
    megabytes = config.env_int("CERTIFICATES_STORAGE_MIN_FREE_MB", 64)
    if megabytes < 0:
        raise ValueError(f"CERTIFICATES_STORAGE_MIN_FREE_MB must not be negative, not {megabytes}")
    return megabytes * 1024 * 1024


class Storage(Protocol):
    def check_writable(self) -> None: ...
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...


class LocalStorage:
    """Files in one directory; writes are atomic (temporary file, then rename). A write that
    fails raises :class:`StorageUnavailable` saying where and why."""

    def __init__(self, directory: str | os.PathLike, min_free: int | None = None):
        self.directory = Path(directory)
        self.min_free = min_free_bytes() if min_free is None else min_free
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unavailable("cannot be created", exc) from exc

    def _path(self, key: str) -> Path:
        return self.directory / check_key(key)

    def _unavailable(self, what: str, exc: OSError) -> StorageUnavailable:
        return StorageUnavailable(f"certificate storage {self.directory} {what}: "
                                  f"{exc.__class__.__name__}: {exc.strerror or exc}")

    def check_writable(self) -> None:
        """Raise :class:`StorageUnavailable` (saying why) unless the directory takes a new file
        now and its filesystem has ``min_free`` bytes free."""
        try:
            fd, probe = tempfile.mkstemp(dir=self.directory, prefix=".probe-")
            os.close(fd)
            os.unlink(probe)
            free = shutil.disk_usage(self.directory).free
        except OSError as exc:
            raise self._unavailable("cannot take a file", exc) from exc
        if free < self.min_free:
            raise StorageUnavailable(
                f"certificate storage {self.directory} has {free / 1024 / 1024:.1f} MB free, less than "
                f"CERTIFICATES_STORAGE_MIN_FREE_MB={self.min_free // (1024 * 1024)}")

    def put(self, key: str, data: bytes) -> None:
        target = self._path(key)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".part")
        except OSError as exc:
            raise self._unavailable(f"cannot take {key}", exc) from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise self._unavailable(f"did not take {key}", exc) from exc
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Storage:
    """Objects under ``prefix`` in one bucket of an S3-compatible store.

    A PUT replaces an object whole, so readers never see half a file. Errors other than
    "no such key" become :class:`StorageUnavailable` (an ``OSError``, which the render
    task retries and the API answers with 503).
    """

    def __init__(self, bucket: str, *, prefix: str = "", client=None, endpoint_url: str | None = None,
                 addressing_style: str = "auto"):
        if not bucket:
            raise ValueError("an S3 bucket name is needed")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or _s3_client(endpoint_url, addressing_style)

    def _object_key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _call(self, operation: str, key: str, **kwargs):
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, Key=self._object_key(key), **kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise FileNotFoundError(key) from exc
            raise StorageUnavailable(f"S3 {operation} of {key!r} in bucket {self.bucket!r} failed: "
                                     f"{error.get('Code')} {error.get('Message', '')}".rstrip()) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 {operation} of {key!r} in bucket {self.bucket!r} failed: "
                                     f"{exc}") from exc

    def check_writable(self) -> None:
        """Raise :class:`StorageUnavailable` unless the bucket answers (endpoint up, bucket
        there, credentials accepted): a HEAD, with no object written on every check. A bucket
        that answers but refuses writes is found by the write itself."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise StorageUnavailable(f"S3 bucket {self.bucket!r} does not answer: "
                                     f"{error.get('Code')} {error.get('Message', '')}".rstrip()) from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 bucket {self.bucket!r} does not answer: {exc}") from exc

    def put(self, key: str, data: bytes) -> None:
        content_type = mimetypes.guess_type(check_key(key))[0] or "application/octet-stream"
        self._call("put_object", key, Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes | None:
        try:
            response = self._call("get_object", key)
        except FileNotFoundError:
            return None
        try:
            with response["Body"] as body:
                return body.read()
        except (BotoCoreError, OSError) as exc:  # the connection dropped mid-body
            raise StorageUnavailable(f"S3 read of {key!r} in bucket {self.bucket!r} failed: {exc}") from exc

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", key)
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", key)  # S3 answers 204 for a missing key too


_client_lock = threading.Lock()


@lru_cache(maxsize=8)
def _cached_s3_client(endpoint_url: str | None, addressing_style: str):
    # A session of its own: boto3's default session is not safe to share between threads.
    # Bounded time and retries: a render or a request must not hang on a dead store.
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=Config(
        s3={"addressing_style": addressing_style}, connect_timeout=5, read_timeout=30,
        retries={"mode": "standard", "max_attempts": 3}))


def _s3_client(endpoint_url: str | None, addressing_style: str):
    """One client per endpoint and process (making one takes tens of milliseconds)."""
    if addressing_style not in ADDRESSING_STYLES:
        raise ValueError(f"CERTIFICATES_S3_ADDRESSING_STYLE must be one of {ADDRESSING_STYLES}, "
                         f"not {addressing_style!r}")
    with _client_lock:
        return _cached_s3_client(endpoint_url, addressing_style)


def storage_from_env() -> Storage:
    """The storage configured by the environment (see README.md, "Storage").

    local: ``CERTIFICATES_STORAGE_DIR``, else ``VAR_DIR/certificates``.
    s3: ``CERTIFICATES_S3_BUCKET`` (required), ``CERTIFICATES_S3_PREFIX`` (default
    ``certificates/``; ``/`` for the bucket's root), ``CERTIFICATES_S3_ENDPOINT_URL`` (default AWS),
    ``CERTIFICATES_S3_ADDRESSING_STYLE`` (``auto``, ``path`` or ``virtual``).
    """
    kind = (config.env("CERTIFICATES_STORAGE", "local")).strip().lower()
    if kind == "local":
        directory = config.env("CERTIFICATES_STORAGE_DIR") or config.var_dir() / "certificates"
        return LocalStorage(directory)
    if kind == "s3":
        bucket = config.env("CERTIFICATES_S3_BUCKET")
        if not bucket:
            raise ValueError("CERTIFICATES_STORAGE=s3 needs CERTIFICATES_S3_BUCKET")
        return S3Storage(bucket, prefix=config.env("CERTIFICATES_S3_PREFIX", "certificates/"),
                         endpoint_url=config.env("CERTIFICATES_S3_ENDPOINT_URL"),
                         addressing_style=config.env("CERTIFICATES_S3_ADDRESSING_STYLE", "auto"))
    raise ValueError(f"CERTIFICATES_STORAGE must be one of {STORAGE_KINDS}, not {kind!r}")
