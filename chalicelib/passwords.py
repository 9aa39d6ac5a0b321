"""Password hashing with scrypt from the standard library (no native dependency to ship).

Parameters are stored with each hash (`scrypt$N$r$p$salt$digest`), so the work factor can be
raised (settings.password_scrypt_n; OWASP's 2**17, r=8, p=1 by default) without breaking old
hashes; a hash weaker than the current setting is replaced at its next successful sign-in.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

from chalicelib import settings

R, P, DIGEST_BYTES, SALT_BYTES = 8, 1, 32, 16
_MAXMEM_MARGIN = 1 << 20
"""OpenSSL refuses scrypt above `maxmem` (32 MiB by default; 2**17 needs 128 MiB)."""


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    maxmem = 128 * r * (n + p + 2) + _MAXMEM_MARGIN  # OpenSSL's own estimate: V and B blocks
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=maxmem)


def _format(n: int, salt: bytes, digest: bytes) -> str:
    return "scrypt${}${}${}${}${}".format(n, R, P, base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def hash_password(password: str, n: int | None = None) -> str:
    """A new hash at the current work factor (or `n`, for tests of older hashes)."""
    n = n or settings.current().password_scrypt_n
    salt = secrets.token_bytes(SALT_BYTES)
    return _format(n, salt, _scrypt(password, salt, n, R, P, DIGEST_BYTES))


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
        if scheme != "scrypt":
            return None
        return int(n), int(r), int(p), base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except (ValueError, binascii.Error):
        return None


def verify_password(password: str, stored: str) -> bool:
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, expected = parsed
    return hmac.compare_digest(_scrypt(password, salt, n, r, p, len(expected)), expected)


def needs_rehash(stored: str) -> bool:
    """True for a hash made with less work than the current setting (or other r, p)."""
    parsed = _parse(stored)
    return parsed is None or parsed[0] < settings.current().password_scrypt_n or parsed[1:3] != (R, P)


def unknown_account_hash() -> str:
    """Verified against when the email is unknown, so both failures cost one scrypt at the
    current parameters. Its digest is random bytes (no password can match), so making it costs
    nothing: a cold start does not pay a second scrypt that would tell unknown emails apart."""
    return _format(settings.current().password_scrypt_n, secrets.token_bytes(SALT_BYTES),
                   secrets.token_bytes(DIGEST_BYTES))
