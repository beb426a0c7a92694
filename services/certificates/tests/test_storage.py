"""Storage of certificate files: local (atomic writes, safe keys) and S3-compatible (against a
real S3 HTTP server on 127.0.0.1), chosen by the environment."""
from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from certificates.storage import LocalStorage, S3Storage, StorageUnavailable, storage_from_env
from diandian_common.testing import free_port

from .conftest import aws_test_credentials

BAD_KEYS = ["", "../escape.pdf", "a/b.pdf", ".hidden", "..", "/etc/passwd", "nul\x00.pdf", "x" * 300, None]


def test_put_get_exists_delete(tmp_path):
    storage = LocalStorage(tmp_path / "pdfs")
    assert storage.get("cert_1.pdf") is None and not storage.exists("cert_1.pdf")
    storage.put("cert_1.pdf", b"%PDF first")
    storage.put("cert_1.pdf", b"%PDF second")
    assert storage.get("cert_1.pdf") == b"%PDF second" and storage.exists("cert_1.pdf")
    assert [p.name for p in (tmp_path / "pdfs").iterdir()] == ["cert_1.pdf"]  # no temp files left
    storage.delete("cert_1.pdf")
    storage.delete("cert_1.pdf")
    assert not storage.exists("cert_1.pdf")


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    storage = LocalStorage(tmp_path)
    storage.put("cert_1.pdf", b"%PDF good")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr("certificates.storage.os.replace", broken_replace)
    with pytest.raises(OSError):
        storage.put("cert_1.pdf", b"%PDF half")
    assert storage.get("cert_1.pdf") == b"%PDF good"
    assert [p.name for p in tmp_path.iterdir()] == ["cert_1.pdf"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_keys_cannot_escape_the_directory(tmp_path, key):
    storage = LocalStorage(tmp_path)
    with pytest.raises(ValueError):
        storage.put(key, b"x")
    with pytest.raises(ValueError):
        storage.get(key)


def test_location_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("CERTIFICATES_STORAGE_DIR", raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    assert storage_from_env().directory == tmp_path / "var" / "certificates"
    monkeypatch.setenv("CERTIFICATES_STORAGE_DIR", str(tmp_path / "elsewhere"))
    assert storage_from_env().directory == tmp_path / "elsewhere"


class TestS3:
    def test_put_get_exists_delete_under_the_prefix(self, s3_bucket):
        storage = storage_from_env()
        assert isinstance(storage, S3Storage) and storage.prefix == "certificates/"
        assert storage.get("cert_1.pdf") is None and not storage.exists("cert_1.pdf")

        storage.put("cert_1.pdf", b"%PDF first")
        storage.put("cert_1.pdf", b"%PDF second")
        storage.put("cert_1.png", b"\x89PNG preview")

        assert storage.get("cert_1.pdf") == b"%PDF second" and storage.exists("cert_1.pdf")
        assert s3_bucket.keys() == ["certificates/cert_1.pdf", "certificates/cert_1.png"]
        head = s3_bucket.client.head_object(Bucket=s3_bucket.name, Key="certificates/cert_1.pdf")
        assert head["ContentType"] == "application/pdf"
        storage.delete("cert_1.pdf")
        storage.delete("cert_1.pdf")
        assert not storage.exists("cert_1.pdf") and s3_bucket.keys() == ["certificates/cert_1.png"]

    @pytest.mark.parametrize("prefix, stored_as", [("/", "cert_1.pdf"), ("a/b", "a/b/cert_1.pdf"),
                                                   ("/pdfs/", "pdfs/cert_1.pdf")])
    def test_prefixes(self, s3_bucket, monkeypatch, prefix, stored_as):
        monkeypatch.setenv("CERTIFICATES_S3_PREFIX", prefix)
        storage_from_env().put("cert_1.pdf", b"%PDF")
        assert s3_bucket.keys() == [stored_as]

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_keys_cannot_escape_the_prefix(self, s3_bucket, key):
        storage = storage_from_env()
        for operation in (lambda: storage.put(key, b"x"), lambda: storage.get(key),
                          lambda: storage.exists(key), lambda: storage.delete(key)):
            with pytest.raises(ValueError):
                operation()
        assert s3_bucket.keys() == []

    def test_a_missing_bucket_is_unavailable_storage(self, s3_bucket, monkeypatch):
        monkeypatch.setenv("CERTIFICATES_S3_BUCKET", "no-such-bucket-here")
        storage = storage_from_env()
        with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
            storage.get("cert_1.pdf")
        with pytest.raises(StorageUnavailable, match="NoSuchBucket"):
            storage.put("cert_1.pdf", b"%PDF")

    def test_an_unreachable_endpoint_is_unavailable_storage(self, tmp_path, monkeypatch):
        aws_test_credentials(monkeypatch, tmp_path)
        client = boto3.session.Session().client(
            "s3", endpoint_url=f"http://127.0.0.1:{free_port()}", config=Config(retries={"max_attempts": 1}))
        storage = S3Storage("certificates", client=client)
        for operation in (lambda: storage.get("cert_1.pdf"), lambda: storage.put("cert_1.pdf", b"x"),
                          lambda: storage.exists("cert_1.pdf")):
            with pytest.raises(StorageUnavailable) as raised:
                operation()
            assert isinstance(raised.value, OSError)  # so the render task retries it


class TestConfiguration:
    def test_local_is_the_default(self, tmp_path, monkeypatch):
        monkeypatch.delenv("CERTIFICATES_STORAGE", raising=False)
        monkeypatch.setenv("VAR_DIR", str(tmp_path))
        assert isinstance(storage_from_env(), LocalStorage)
        monkeypatch.setenv("CERTIFICATES_STORAGE", " Local ")
        assert isinstance(storage_from_env(), LocalStorage)

    def test_s3_from_the_environment(self, tmp_path, monkeypatch):
        aws_test_credentials(monkeypatch, tmp_path)
        monkeypatch.setenv("CERTIFICATES_STORAGE", "s3")
        monkeypatch.setenv("CERTIFICATES_S3_BUCKET", "diandian-certificates")
        monkeypatch.setenv("CERTIFICATES_S3_ENDPOINT_URL", "http://minio.internal:9000")
        monkeypatch.setenv("CERTIFICATES_S3_ADDRESSING_STYLE", "path")
        monkeypatch.delenv("CERTIFICATES_S3_PREFIX", raising=False)
        storage = storage_from_env()
        assert (storage.bucket, storage.prefix) == ("diandian-certificates", "certificates/")
        assert storage.client.meta.endpoint_url == "http://minio.internal:9000"
        assert storage.client.meta.config.s3["addressing_style"] == "path"
        assert storage_from_env().client is storage.client  # one client per process and endpoint

    @pytest.mark.parametrize("settings, message", [
        ({"CERTIFICATES_STORAGE": "ftp"}, "CERTIFICATES_STORAGE must be one of"),
        ({"CERTIFICATES_STORAGE": "s3"}, "needs CERTIFICATES_S3_BUCKET"),
        ({"CERTIFICATES_STORAGE": "s3", "CERTIFICATES_S3_BUCKET": "b-1",
          "CERTIFICATES_S3_ADDRESSING_STYLE": "sideways"}, "CERTIFICATES_S3_ADDRESSING_STYLE"),
    ])
    def test_mistakes_are_refused(self, monkeypatch, settings, message):
        monkeypatch.delenv("CERTIFICATES_S3_BUCKET", raising=False)
        monkeypatch.delenv("CERTIFICATES_S3_ADDRESSING_STYLE", raising=False)
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=message):
            storage_from_env()
