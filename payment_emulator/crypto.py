"""The few cryptographic operations both providers' protocols are made of.

WeChat Pay API v3 and Alipay (RSA2) both sign with RSA PKCS#1 v1.5 over SHA-256 and send the
signature in base64; WeChat Pay encrypts notification resources and platform certificates
with AES-256-GCM under the merchant's APIv3 key (a 32-character string used as the key bytes,
a 12-character nonce and an associated-data string, the tag appended to the ciphertext).
"""
from __future__ import annotations

import base64
import secrets
import string

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALPHANUMERIC = string.ascii_letters + string.digits


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def public_pem(key: rsa.RSAPublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def load_private(pem: str) -> rsa.RSAPrivateKey:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def load_public(pem: str) -> rsa.RSAPublicKey:
    """A public key from PEM, or from the bare base64 body merchants' consoles show."""
    text = pem.strip()
    if not text.startswith("-----BEGIN"):
        text = "-----BEGIN PUBLIC KEY-----\n" + text + "\n-----END PUBLIC KEY-----"
    return serialization.load_pem_public_key(text.encode())


def sign(key: rsa.RSAPrivateKey, message: str) -> str:
    """SHA256withRSA, base64."""
    return base64.b64encode(key.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: rsa.RSAPublicKey, message: str | bytes, signature: str) -> bool:
    if isinstance(message, str):
        message = message.encode()
    try:
        raw = base64.b64decode(signature, validate=False)
    except (ValueError, TypeError):
        return False
    try:
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


def aes_gcm_encrypt(apiv3_key: str, plaintext: str, associated_data: str) -> dict:
    """WeChat Pay's ``encrypt-resource``: ``{algorithm, ciphertext, associated_data, nonce}``."""
    nonce = random_string(12)
    ciphertext = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext.encode(),
                                                    associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": associated_data, "nonce": nonce}


def random_string(length: int, alphabet: str = ALPHANUMERIC) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def random_digits(length: int) -> str:
    return random_string(length, string.digits)
