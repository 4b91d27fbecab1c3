"""The bounded, short-lived cache of verified keys that Check keeps, and the verifier over it."""

import asyncio
import datetime as dt
import math
from dataclasses import replace

import pytest

from farm_auth.keys import KeyRecord, KeyRefused, SecretHasher
from farm_auth.limits import LimitDefaults, RateLimit
from farm_auth.verifier import KeyCache, KeyVerifier, Verified, usable_until
from farm_core.identity import Identity
from tests.clock import MovedClock
from tests.helpers import assert_eventually

HASHER = SecretHasher("pepper")
DEFAULTS = LimitDefaults(50, 100, 0, 0, 0, 0)


def verified(key_id: str) -> Verified:
    return Verified(Identity("acme", key_id, frozenset({"admin"})), RateLimit(50, 100))


def record(secret: str, **changes: object) -> KeyRecord:
    made = KeyRecord(
        id=f"key_{secret}",
        tenant="acme",
        name="ci",
        scopes=("admin",),
        secret_hash=HASHER.hash(secret),
        create_time=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def test_entry_is_trusted_only_for_the_cache_lifetime() -> None:
    clock = MovedClock()
    cache = KeyCache(1.0, 10, clock)
    cache.put("a", verified("key_a"))

    clock.now += 0.99
    assert cache.get("a") == verified("key_a")
    clock.now += 0.01
    assert cache.get("a") is None
    assert len(cache) == 0


def test_entry_ends_when_the_key_stops_being_usable_within_the_lifetime() -> None:
    wall = MovedClock()
    cache = KeyCache(60.0, 10, MovedClock(), wall)
    cache.put("a", verified("key_a"), usable_until=wall.now + 0.5)

    assert cache.get("a") == verified("key_a")
    wall.now += 0.5
    assert cache.get("a") is None


def test_cache_is_bounded_and_drops_the_oldest_entry() -> None:
    cache = KeyCache(60.0, 2, MovedClock())
    for name in ("a", "b", "c"):
        cache.put(name, verified(f"key_{name}"))

    assert len(cache) == 2
    assert cache.get("a") is None
    assert cache.get("b") == verified("key_b")
    assert cache.get("c") == verified("key_c")


def test_forgetting_a_key_drops_every_secret_of_it() -> None:
    cache = KeyCache(60.0, 10, MovedClock())
    cache.put("new", verified("key_a"))
    cache.put("old", verified("key_a"))
    cache.put("other", verified("key_b"))

    cache.forget("key_a")

    assert (cache.get("new"), cache.get("old")) == (None, None)
    assert cache.get("other") == verified("key_b")


def test_zero_lifetime_remembers_nothing() -> None:
    cache = KeyCache(0.0, 10, MovedClock())
    cache.put("a", verified("key_a"))

    assert cache.get("a") is None


def test_usable_until_is_the_expiry_or_the_old_secrets_grace() -> None:
    expiry = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    grace_end = dt.datetime(2029, 1, 1, tzinfo=dt.UTC)
    rotated = record("new", expire_time=expiry, previous_secret_hash=HASHER.hash("old"))
    rotated = replace(rotated, previous_secret_expire_time=grace_end)

    assert usable_until(rotated, HASHER.hash("new")) == expiry.timestamp()
    assert usable_until(rotated, HASHER.hash("old")) == grace_end.timestamp()
    assert usable_until(record("plain"), HASHER.hash("plain")) == math.inf


def test_a_keys_identity_names_its_secret_by_a_fingerprint_and_says_until_when_it_works() -> None:
    expiry = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    grace_end = dt.datetime(2029, 1, 1, tzinfo=dt.UTC)
    rotated = record("new", expire_time=expiry, previous_secret_hash=HASHER.hash("old"))
    rotated = replace(rotated, previous_secret_expire_time=grace_end)

    new = rotated.identity("boot", secret_hash=HASHER.hash("new")).validity
    old = rotated.identity("boot", secret_hash=HASHER.hash("old")).validity
    assert new is not None and old is not None
    assert (new.key_expires, new.secret_expires) == (expiry.timestamp(), None)
    assert (old.key_expires, old.secret_expires) == (expiry.timestamp(), grace_end.timestamp())
    assert new.secret != old.secret
    assert new.secret not in HASHER.hash("new")
    # The notice of the rotation names the same fingerprints.
    notice = rotated.secrets()
    assert (notice.current, notice.previous) == (new.secret, old.secret)
    assert notice.previous_until == grace_end.timestamp()
    # A token names the secret it was asked with by that fingerprint: it works as long.
    assert rotated.validity_of(new.secret) == new
    assert rotated.validity_of(old.secret) == old
    rotated_again = replace(
        rotated, secret_hash=HASHER.hash("newer"), previous_secret_hash=HASHER.hash("new")
    )
    assert rotated_again.validity_of(old.secret).secret_expires == 0.0


class Store:
    """The one KeyStore call the verifier makes, over a dict, counting lookups held by `gate`."""

    def __init__(self, *records: KeyRecord) -> None:
        self.records = {r.secret_hash: r for r in records}
        self.lookups = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def find_by_hash(self, secret_hash: str) -> KeyRecord | None:
        self.lookups += 1
        await self.gate.wait()
        return self.records.get(secret_hash)


def verifier_over(store: Store, clock: MovedClock) -> KeyVerifier:
    cache = KeyCache(1.0, 10, clock)
    return KeyVerifier(store, HASHER, cache, "default", DEFAULTS)  # type: ignore[arg-type]


async def test_a_verified_key_is_looked_up_once_per_cache_lifetime() -> None:
    clock, store = MovedClock(), Store(record("a"))
    verifier = verifier_over(store, clock)

    first = await verifier.verify("a")
    assert await verifier.verify("a") is first
    assert store.lookups == 1
    clock.now += 1.0
    await verifier.verify("a")
    assert store.lookups == 2


async def test_a_revoked_key_is_refused_at_once_despite_the_cache() -> None:
    store = Store(record("a"))
    verifier = verifier_over(store, MovedClock())
    await verifier.verify("a")

    revoked = record("a", revoke_time=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    store.records[revoked.secret_hash] = revoked
    verifier.forget(revoked)

    with pytest.raises(KeyRefused, match="revoked"):
        await verifier.verify("a")


async def test_another_replicas_revoke_bites_within_the_cache_lifetime() -> None:
    clock, store = MovedClock(), Store(record("a"))
    verifier = verifier_over(store, clock)
    await verifier.verify("a")

    revoked = record("a", revoke_time=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    store.records[revoked.secret_hash] = revoked
    clock.now += 1.0

    with pytest.raises(KeyRefused, match="revoked"):
        await verifier.verify("a")


async def test_an_unknown_secret_is_never_remembered() -> None:
    store = Store()
    verifier = verifier_over(store, MovedClock())

    for _ in range(2):
        with pytest.raises(KeyRefused, match="unknown"):
            await verifier.verify("nope")
    assert store.lookups == 2


async def test_requests_that_miss_the_cache_together_share_one_lookup() -> None:
    store = Store(record("a"))
    store.gate.clear()
    verifier = verifier_over(store, MovedClock())

    waiting = [asyncio.create_task(verifier.verify("a")) for _ in range(10)]
    await asyncio.sleep(0)
    store.gate.set()
    answers = await asyncio.gather(*waiting)

    assert store.lookups == 1
    assert {answer.identity.key_id for answer in answers} == {"key_a"}


async def test_a_lookup_overtaken_by_a_revoke_is_not_remembered() -> None:
    store = Store(record("a"))
    store.gate.clear()
    verifier = verifier_over(store, MovedClock())
    in_flight = asyncio.create_task(verifier.verify("a"))
    await assert_eventually(lambda: store.lookups == 1, within=5)

    revoked = record("a", revoke_time=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
    verifier.forget(revoked)
    store.gate.set()
    await in_flight
    store.records[revoked.secret_hash] = revoked

    with pytest.raises(KeyRefused, match="revoked"):
        await verifier.verify("a")
