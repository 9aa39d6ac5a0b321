"""Password hashing with scrypt from the standard library (no native dependency to ship).

Parameters are stored with each hash so they can be raised later without breaking old ones.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

_N, _R, _P, _LEN = 2**14, 8, 1, 32


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return "scrypt${}${}${}${}${}".format(
        _N, _R, _P, base64.b64encode(salt).decode(), base64.b64encode(digest).decode())


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest_b64)
    actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r),
                            p=int(p), dklen=len(expected))
    return hmac.compare_digest(actual, expected)


@functools.cache
def unknown_account_hash() -> str:
    """Verified against when the email is unknown, so both failures cost the same time.

    Made on first use, not at import: scrypt costs ~50 ms, which every cold start would pay.
    """
    return hash_password(secrets.token_urlsafe(16))
