"""Password hashing (argon2id). The plaintext never leaves the request that carried it."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hashers: dict[tuple[int, int], PasswordHasher] = {}


def _hasher(memory_kib: int, time_cost: int) -> PasswordHasher:
    key = (memory_kib, time_cost)
    if key not in _hashers:
        _hashers[key] = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
    return _hashers[key]


def hash_password(password: str, *, memory_kib: int = 19_456, time_cost: int = 2) -> str:
    return _hasher(memory_kib, time_cost).hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return PasswordHasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
