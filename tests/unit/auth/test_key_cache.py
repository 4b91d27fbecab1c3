"""The bounded, short-lived cache of valid keys that Check keeps."""

import datetime as dt

from farm_auth.keys import KeyRecord
from farm_auth.verifier import KeyCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(secret_hash: str) -> KeyRecord:
    return KeyRecord(
        id=f"key_{secret_hash}",
        tenant="acme",
        name="ci",
        scopes=("admin",),
        secret_hash=secret_hash,
        create_time=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )


def test_entry_is_trusted_only_for_the_cache_lifetime() -> None:
    clock = Clock()
    cache = KeyCache(1.0, 10, clock)
    cache.put(record("a"))

    clock.now += 0.99
    assert cache.get("a") == record("a")
    clock.now += 0.01
    assert cache.get("a") is None
    assert len(cache) == 0


def test_cache_is_bounded_and_drops_the_oldest_entry() -> None:
    cache = KeyCache(60.0, 2, Clock())
    for name in ("a", "b", "c"):
        cache.put(record(name))

    assert len(cache) == 2
    assert cache.get("a") is None
    assert cache.get("b") == record("b")
    assert cache.get("c") == record("c")


def test_forgotten_entry_is_looked_up_again() -> None:
    cache = KeyCache(60.0, 10, Clock())
    cache.put(record("a"))

    cache.forget("a")

    assert cache.get("a") is None


def test_zero_lifetime_remembers_nothing() -> None:
    cache = KeyCache(0.0, 10, Clock())
    cache.put(record("a"))

    assert cache.get("a") is None
