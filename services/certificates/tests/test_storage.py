"""Local PDF storage: atomic writes, safe keys, location from the environment."""
from __future__ import annotations

import pytest

from certificates.storage import LocalStorage, storage_from_env


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


@pytest.mark.parametrize("key", ["", "../escape.pdf", "a/b.pdf", ".hidden", "..", "/etc/passwd",
                                 "nul\x00.pdf", "x" * 300, None])
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
