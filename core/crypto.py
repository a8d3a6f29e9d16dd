"""Column encryption (AES-256-GCM) and keyed blind indexes.

Ciphertexts are stored as ``<kid>$<base64(nonce || ciphertext)>`` so keys can be
rotated: the first key in FIELD_ENCRYPTION_KEYS encrypts, every listed key
decrypts (``manage.py rotate_field_keys`` re-encrypts with the newest).
Exact search and uniqueness use an HMAC-SHA256 blind index with its own key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_SEP = "$"


@lru_cache(maxsize=8)
def _keys(spec: tuple[str, ...]) -> tuple[tuple[str, AESGCM], ...]:
    out = []
    for item in spec:
        kid, _, b64 = item.partition(":")
        raw = base64.b64decode(b64)
        if len(raw) != 32:
            raise ImproperlyConfigured(f"Field key {kid!r} must be 32 bytes.")
        out.append((kid, AESGCM(raw)))
    return tuple(out)


def _dev_key() -> str:
    # Development default only (production.py requires real keys): derived
    # from SECRET_KEY so a demo database stays readable across restarts.
    return _dev_key_from(settings.SECRET_KEY)


@lru_cache(maxsize=8)
def _dev_key_from(secret: str) -> str:
    # once per secret: keyring() runs for every value read or written
    digest = hashlib.sha256(("field-key:" + secret).encode()).digest()
    return "dev:" + base64.b64encode(digest).decode()


def keyring() -> tuple[tuple[str, AESGCM], ...]:
    spec = tuple(settings.FIELD_ENCRYPTION_KEYS) or (_dev_key(),)
    return _keys(spec)


def encrypt(plaintext: str) -> str:
    kid, aead = keyring()[0]
    nonce = os.urandom(12)
    ct = aead.encrypt(nonce, plaintext.encode("utf-8"), kid.encode())
    return kid + _SEP + base64.b64encode(nonce + ct).decode("ascii")


def encrypter():
    """``encrypt`` with the current key bound: for bulk loads, where looking
    the key ring up again for every value costs more than the cipher."""
    kid, aead = keyring()[0]
    aad = kid.encode()
    prefix = kid + _SEP

    def encrypt_one(plaintext: str) -> str:
        nonce = os.urandom(12)
        ct = aead.encrypt(nonce, plaintext.encode("utf-8"), aad)
        return prefix + base64.b64encode(nonce + ct).decode("ascii")

    return encrypt_one


def decrypt(token: str) -> str:
    kid, sep, b64 = token.partition(_SEP)
    if not sep:
        raise ValueError("not an encrypted value")
    for key_id, aead in keyring():
        if key_id == kid:
            raw = base64.b64decode(b64)
            return aead.decrypt(raw[:12], raw[12:], kid.encode()).decode("utf-8")
    raise ImproperlyConfigured(f"No key {kid!r} in FIELD_ENCRYPTION_KEYS to decrypt a value.")


def current_kid() -> str:
    return keyring()[0][0]


def blind_index(value: str, *, purpose: str) -> str:
    """Keyed, deterministic index of ``value`` for exact match and uniqueness."""
    key = settings.BLIND_INDEX_KEY or ("blind:" + settings.SECRET_KEY)
    msg = f"{purpose}:{value}".encode()
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()
