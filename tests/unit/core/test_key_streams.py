"""Streams opened with an API key end when it is revoked or expires, or their secret is replaced."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from farm_core.errors import Unauthenticated
from farm_core.identity import Identity, IdentitySigner
from farm_core.key_streams import NOTICE_MEMORY_SECONDS, KeyStreams, until_ended
from farm_core.key_validity import KeySecrets, KeyValidity

KEY = "key_00000000000000aa"
NOW = 1_000_000.0


class Clock:
    """A wall clock the test sets."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class Ends:
    """The reasons the streams were ended with, by stream name."""

    def __init__(self) -> None:
        self.reasons: dict[str, str] = {}
        self.changed = asyncio.Event()

    def of(self, name: str) -> Callable[[str], Awaitable[None]]:
        async def end(reason: str) -> None:
            self.reasons[name] = reason
            self.changed.set()

        return end


def test_an_identity_says_until_when_its_key_and_secret_work_and_an_older_one_does_not() -> None:
    signer = IdentitySigner(Ed25519PrivateKey.generate())
    validity = KeyValidity("0123456789abcdef", NOW + 60.5, NOW + 30.0)
    identity = Identity("acme", KEY, frozenset({"sessions"}), validity=validity)
    assert signer.decode(signer.encode(identity)).validity == validity
    older = Identity("acme", KEY, frozenset({"sessions"}))
    assert signer.decode(signer.encode(older)).validity is None


def test_a_stream_ends_at_the_earlier_of_the_keys_expiry_and_its_secrets_grace() -> None:
    assert KeyValidity("s", key_expires=NOW + 5).ending() == (NOW + 5, "API key {key_id} expired")
    rotated = KeyValidity("s", key_expires=NOW + 50, secret_expires=NOW + 5).ending()
    assert rotated is not None and rotated[0] == NOW + 5 and "rotated" in rotated[1]
    assert KeyValidity("s").ending() is None


def test_a_rotation_keeps_the_current_secret_ends_the_previous_at_its_grace_others_now() -> None:
    secrets = KeySecrets(KEY, current="new", previous="old", previous_until=NOW + 9)
    assert KeyValidity("new").under(secrets, NOW) == KeyValidity("new")
    assert KeyValidity("old").under(secrets, NOW).secret_expires == NOW + 9
    assert KeyValidity("older").under(secrets, NOW).secret_expires == NOW
    # An identity that does not name its secret is not ended by a rotation.
    assert KeyValidity().under(secrets, NOW) == KeyValidity()


async def test_streams_end_on_revoke_and_on_a_rotation_but_not_others() -> None:
    clock, ends = Clock(), Ends()
    streams = KeyStreams(clock)
    streams.add(KEY, KeyValidity("old"), ends.of("old"))
    streams.add(KEY, KeyValidity("new"), ends.of("new"))
    streams.add("key_other", None, ends.of("other"))
    await streams.secrets_changed(KeySecrets(KEY, current="new", previous="", previous_until=0))
    await asyncio.wait_for(ends.changed.wait(), 5)
    assert ends.reasons == {
        "old": f"API key {KEY} rotated: the secret this was opened with no longer works"
    }
    await streams.revoked(KEY)
    assert ends.reasons["new"] == f"API key {KEY} revoked"
    assert "other" not in ends.reasons
    # A stream opened after the revoke was heard (an edge that had not heard yet) ends too.
    streams.add(KEY, KeyValidity("new"), ends.of("late"))
    await streams.close()
    assert ends.reasons["late"] == f"API key {KEY} revoked"
    # Not for ever: the edge has long refused the key by then.
    clock.now += NOTICE_MEMORY_SECONDS + 1
    await streams.revoked("key_another")
    streams.add(KEY, KeyValidity("new"), ends.of("much later"))
    await streams.close()
    assert "much later" not in ends.reasons


async def test_a_stream_ends_when_its_key_expires() -> None:
    ends = Ends()
    streams = KeyStreams()
    streams.add(KEY, KeyValidity("s", key_expires=0.0), ends.of("expired"))
    streams.add(KEY, KeyValidity("s"), ends.of("kept"))
    await asyncio.wait_for(ends.changed.wait(), 5)
    assert ends.reasons == {"expired": f"API key {KEY} expired"}


async def test_until_ended_passes_items_then_refuses_with_the_reason() -> None:
    ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    hold = asyncio.Event()

    async def items() -> AsyncIterator[int]:
        yield 1
        await hold.wait()
        yield 2

    seen: list[int] = []
    with pytest.raises(Unauthenticated, match=f"API key {KEY} revoked"):
        async for item in until_ended(items(), ended):
            seen.append(item)
            ended.set_result(f"API key {KEY} revoked")
    assert seen == [1]
