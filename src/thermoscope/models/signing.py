"""Ed25519 keys and signatures for model releases (the ``cryptography`` package).

Keys are PEM files: the private key PKCS#8 without a passphrase, written with mode 0600 (keep
it off the line machines), the public key SubjectPublicKeyInfo (give it to the server and the
edge). A signature is the raw 64-byte Ed25519 signature of the signed bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from thermoscope.models.errors import ReleaseError

#: Length of an Ed25519 signature in bytes.
SIGNATURE_BYTES = 64
#: Largest key file read, bytes (a PEM Ed25519 key is about 120 bytes).
_MAX_KEY_BYTES = 16_384


def generate_keys(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair; returns the public key's fingerprint (``key_fingerprint``).

    Raises:
        ReleaseError: a key file already exists (never overwritten) or cannot be written.
    """
    private_path, public_path = Path(private_path), Path(public_path)
    for path in (private_path, public_path):
        if path.exists():
            raise ReleaseError(path, "already exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem)
        public_path.write_bytes(public_pem)
    except OSError as exc:
        raise ReleaseError(
            exc.filename or private_path, f"cannot write key: {exc.strerror}"
        ) from None
    return key_fingerprint(key.public_key())


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key of a PEM file.

    Raises:
        ReleaseError: the file is missing, unreadable, encrypted or not an Ed25519 private key.
    """
    data = _read_key(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ReleaseError(path, f"not a PEM private key without passphrase ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseError(path, f"not an Ed25519 private key ({type(key).__name__})")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key of a PEM file.

    Raises:
        ReleaseError: the file is missing, unreadable or not an Ed25519 public key.
    """
    data = _read_key(path)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise ReleaseError(path, f"not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ReleaseError(path, f"not an Ed25519 public key ({type(key).__name__})")
    return key


def key_fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 hex of the raw 32-byte public key: names the key in manifests and messages."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def sign_bytes(key: Ed25519PrivateKey, data: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``data``."""
    return key.sign(data)


def signature_matches(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s valid signature of ``data``."""
    if len(signature) != SIGNATURE_BYTES:
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _read_key(path: Path) -> bytes:
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(_MAX_KEY_BYTES + 1)
    except OSError as exc:
        raise ReleaseError(path, f"cannot read key: {exc.strerror}") from None
    if len(data) > _MAX_KEY_BYTES:
        raise ReleaseError(path, f"larger than {_MAX_KEY_BYTES} bytes; not a key file")
    return data


__all__ = [
    "SIGNATURE_BYTES",
    "generate_keys",
    "key_fingerprint",
    "load_private_key",
    "load_public_key",
    "sign_bytes",
    "signature_matches",
]
