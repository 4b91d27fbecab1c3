"""The filter of cache keys that have a result: never says no to a key it was given."""

import hashlib

from farm_scheduler.cached_keys import CachedKeys, KeyFilter


def key(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def test_every_added_pair_is_in_and_few_others_are() -> None:
    keys = KeyFilter(bits=1 << 16)
    for n in range(1000):
        keys.add("tenant-a", key(n))

    assert all(("tenant-a", key(n)) in keys for n in range(1000))
    others = sum(("tenant-a", key(n)) in keys for n in range(1000, 3000))
    other_tenant = sum(("tenant-b", key(n)) in keys for n in range(1000))
    assert others + other_tenant < 60


def test_a_filter_not_loaded_skips_no_lookup() -> None:
    keys = CachedKeys()
    keys.add("tenant-a", key(1))

    assert keys.may_hit("tenant-a", key(2))
