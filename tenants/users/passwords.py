"""Passwords: argon2id hashes, the policy a new password must meet, the common-password list.

The hasher is argon2-cffi's `PasswordHasher()` with its defaults, RFC 9106's recommended
low-memory profile (argon2id, t=3, m=64 MiB, p=4). `needs_rehash` tells when a stored hash was
made with other parameters, so a successful sign-in rehashes it. Hashing and verifying run in
a worker thread (they take tens of milliseconds on purpose). Tests may swap in cheaper
parameters with `use_hasher`; the product never does.
"""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tenants.kernel.errors import InvalidRequest

#: The longest password accepted (argon2 takes any length; this bounds the work per request).
MAX_LENGTH = 256
COMMON_PASSWORDS = Path(__file__).with_name("common-passwords.txt")

_hasher = PasswordHasher()
#: A hash of nothing anyone types: verified against when the account does not exist, so a
#: sign-in takes as long whether or not it does.
_dummy_hash: str | None = None


def use_hasher(hasher: PasswordHasher) -> None:
    """Replace the hasher (tests lower its cost); hashes made before keep verifying."""
    global _hasher, _dummy_hash
    _hasher, _dummy_hash = hasher, None


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list (see extract_common_passwords.py for its source), lower-cased."""
    return frozenset(line.strip() for line in COMMON_PASSWORDS.read_text("utf-8").splitlines()
                     if line.strip())


def check_policy(password: str, *, min_length: int, email: str | None = None,
                 param: str = "password") -> None:
    """Raise `InvalidRequest` (422, `param`) unless `password` is long enough, not too long,
    not on the common list and not the email address itself. Called before any hash."""
    if len(password) < min_length:
        raise InvalidRequest(f"the password needs at least {min_length} characters",
                             code="password_too_short", param=param)
    if len(password) > MAX_LENGTH:
        raise InvalidRequest(f"the password is longer than {MAX_LENGTH} characters",
                             code="password_too_long", param=param)
    lowered = password.lower()
    if lowered in common_passwords() or (email is not None and lowered == email.lower()):
        raise InvalidRequest("this password is too common; choose another",
                             code="password_too_common", param=param)


async def hash_password(password: str) -> str:
    """The argon2id PHC string for `password` (computed in a thread)."""
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(stored: str | None, password: str) -> tuple[bool, str | None]:
    """Whether `password` matches `stored` (None: no password, or no account: a dummy hash
    is checked anyway so the time is the same), and a new hash to store when the stored one
    was made with other parameters (None: keep it)."""
    global _dummy_hash
    if stored is None:
        if _dummy_hash is None:
            _dummy_hash = await hash_password("no account has this password")
        stored = _dummy_hash
        matched = False
    else:
        matched = True
    try:
        await asyncio.to_thread(_hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False, None
    if not matched:
        return False, None
    if _hasher.check_needs_rehash(stored):
        return True, await hash_password(password)
    return True, None
