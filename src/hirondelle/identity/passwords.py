"""Password hashing with argon2id (RFC 9106), off the event loop.

Hashing costs tens of milliseconds of CPU by design; it runs on a small worker pool so
that one login never stalls the sessions of everybody else on the node.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2-cffi's defaults follow RFC 9106's second recommended option (64 MiB, t=3, p=4).
_hasher = PasswordHasher()
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


def hash_password_sync(password: str) -> str:
    return _hasher.hash(password)


def verify_password_sync(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_pool, hash_password_sync, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password``; with no hash (unknown account, no password set) the same work
    is done against a dummy hash and the answer is False."""
    return await asyncio.get_running_loop().run_in_executor(
        _pool, _verify_or_pretend, password_hash, password
    )


def _verify_or_pretend(password_hash: str | None, password: str) -> bool:
    if password_hash is None:
        verify_password_sync(dummy_hash(), password)
        return False
    return verify_password_sync(password_hash, password)


@functools.cache
def dummy_hash() -> str:
    """Verified against when the account does not exist, so that a wrong address costs
    the same time as a wrong password and timing does not reveal which accounts exist.
    Computed on first use, not at import: the CLI need not pay for it."""
    return hash_password_sync("hirondelle-no-such-account")
