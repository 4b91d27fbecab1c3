import base64
import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

import jwt
import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core.db import utcnow
from farm_core.errors import InvalidArgument, PermissionDenied, Unauthenticated
from farm_core.identity import (
    CredentialRole,
    Identity,
    IdentitySigner,
    IdentityVerifier,
    credential_id,
    require_operator,
    token_expiry,
)
from farm_core.identity_keys import load_private_key, new_private_key, private_pem, public_pem
from farm_core.paging import (
    DEFAULT_PAGE_SIZE,
    Cursor,
    decode_cursor,
    encode_cursor,
    page_size,
    read_page,
    split_page,
)
from farm_core.quotas import TenantQuotas


def test_identity_round_trips_through_a_signed_token() -> None:
    codec = IdentitySigner(private_pem(new_private_key()))
    identity = Identity("acme", "key_1", frozenset({"tasks.read"}), "ci")
    assert codec.decode(codec.encode(identity)) == identity


def test_the_operator_flag_travels_in_the_token() -> None:
    codec = IdentitySigner(private_pem(new_private_key()))
    operator = Identity("default", "key_1", frozenset({"admin"}), operator=True)
    assert codec.decode(codec.encode(operator)).operator
    assert not codec.decode(codec.encode(Identity("acme", "k", frozenset()))).operator


def test_the_tenants_quotas_travel_in_the_token() -> None:
    codec = IdentitySigner(private_pem(new_private_key()))
    quotas = TenantQuotas(max_queued_tasks=5, max_running_tasks=0, max_artifact_bytes=1024)
    identity = Identity("acme", "key_1", frozenset(), quotas=quotas)
    assert codec.decode(codec.encode(identity)).quotas == quotas
    assert codec.decode(codec.encode(Identity("acme", "k", frozenset()))).quotas is None


def test_only_an_operator_passes_require_operator_and_the_refusal_says_who_may() -> None:
    admin = Identity("acme", "key_1", frozenset({"admin"}))
    require_operator(Identity("default", "key_0", frozenset({"admin"}), operator=True), "x")

    with pytest.raises(PermissionDenied) as plain:
        require_operator(admin, "manage the fleet")
    with pytest.raises(PermissionDenied) as named:
        require_operator(admin, "read another tenant", "default", field="tenant")

    assert plain.value.message == "only an admin of the bootstrap tenant may manage the fleet"
    assert named.value.message == (
        "tenant: only an admin of the bootstrap tenant 'default' may read another tenant"
    )


def test_token_signed_with_another_secret_is_refused() -> None:
    token = IdentitySigner(private_pem(new_private_key())).encode(
        Identity("acme", "k", frozenset())
    )
    with pytest.raises(Unauthenticated):
        IdentitySigner(private_pem(new_private_key())).decode(token)


def test_expired_token_is_refused() -> None:
    codec = IdentitySigner(private_pem(new_private_key()), ttl_seconds=-10)
    with pytest.raises(Unauthenticated):
        codec.decode(codec.encode(Identity("acme", "k", frozenset())))


def test_a_tokens_expiry_and_a_credentials_id_are_read_unchecked_and_empty_for_junk() -> None:
    codec = IdentitySigner(private_pem(new_private_key()), ttl_seconds=60)
    token, expires = codec.renew(Identity("acme", "k", frozenset()), time.time())
    credential = codec.credential(CredentialRole.AGENT, "agent-1")

    assert token_expiry(token) == expires
    assert credential_id(credential).startswith("cred_")
    assert (token_expiry("not a token"), credential_id("not a token")) == (0.0, "")


def test_page_token_round_trips_and_garbage_names_the_field() -> None:
    cursor = Cursor(utcnow(), "abc")
    assert decode_cursor(encode_cursor(cursor)) == cursor
    with pytest.raises(InvalidArgument, match=r"^pageToken:"):
        decode_cursor("not-a-token")
    with pytest.raises(InvalidArgument, match=r"^pageSize:"):
        page_size(5000)
    assert page_size(0) == 50


@pytest.mark.parametrize(
    "created",
    [
        "2026-01-01T00:00:00",  # no offset: the database refuses a naive time
        "2026-01-01",
        "0001-01-01T00:00:00+14:00",  # before the calendar's start in UTC
        "9999-12-31T23:59:59-14:00",  # after its end in UTC
    ],
)
def test_a_forged_page_tokens_time_names_the_field(created: str) -> None:
    # A token is the caller's to send back: a time the query could not bind was a 500.
    raw = json.dumps({"t": created, "id": "abc"}).encode()
    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    with pytest.raises(InvalidArgument, match=r"^pageToken:"):
        decode_cursor(token)


@pytest.mark.parametrize("object_id", ["a\x00b", 5, None, ["abc"]])
def test_a_forged_page_tokens_id_names_the_field(object_id: object) -> None:
    # An id with a NUL was a 500 on PostgreSQL, in every List; ours are always text.
    raw = json.dumps({"t": "2026-01-01T00:00:00+00:00", "id": object_id}).encode()
    token = base64.urlsafe_b64encode(raw).decode().rstrip("=")

    with pytest.raises(InvalidArgument, match=r"^pageToken:"):
        decode_cursor(token)


def test_split_page_hands_out_a_token_only_when_a_row_is_left_over() -> None:
    now = utcnow()
    rows = [Cursor(now, f"id-{n}") for n in range(3)]

    page, token = split_page(rows, 2, lambda row: row)
    assert page == rows[:2]
    assert decode_cursor(token) == rows[1]

    assert split_page(rows[:2], 2, lambda row: row) == (rows[:2], "")
    assert split_page([], 2, lambda row: row) == ([], "")


class Rows:
    """Rows newest first, read as a store reads them: up to a limit, after a cursor."""

    def __init__(self, count: int) -> None:
        now = utcnow()
        self.rows = [Cursor(now, f"id-{n}") for n in range(count)]
        self.asked: list[tuple[int, Cursor | None]] = []

    async def fetch(self, limit: int, after: Cursor | None) -> Sequence[Cursor]:
        self.asked.append((limit, after))
        start = self.rows.index(after) + 1 if after is not None else 0
        return self.rows[start : start + limit]


async def test_read_page_follows_its_tokens_through_every_row() -> None:
    rows = Rows(5)
    request = tasks_pb2.ListTasksRequest(page_size=2)
    pages = []
    while True:
        page, token = await read_page(request, rows.fetch, lambda row: row)
        pages.append(page)
        if not token:
            break
        request.page_token = token

    assert pages == [rows.rows[0:2], rows.rows[2:4], rows.rows[4:5]]
    assert rows.asked == [(3, None), (3, rows.rows[1]), (3, rows.rows[3])]


async def test_read_page_without_a_size_reads_the_default_page() -> None:
    rows = Rows(DEFAULT_PAGE_SIZE + 1)
    page, token = await read_page(tasks_pb2.ListTasksRequest(), rows.fetch, lambda row: row)
    assert page == rows.rows[:DEFAULT_PAGE_SIZE]
    assert decode_cursor(token) == rows.rows[DEFAULT_PAGE_SIZE - 1]


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (tasks_pb2.ListTasksRequest(page_size=-1), "pageSize"),
        (tasks_pb2.ListTasksRequest(page_token="not-ours"), "pageToken"),
    ],
)
async def test_read_page_refuses_a_bad_size_or_token_naming_it_and_reads_nothing(
    bad: tasks_pb2.ListTasksRequest, named: str
) -> None:
    rows = Rows(3)
    with pytest.raises(InvalidArgument, match=rf"^{named}: "):
        await read_page(bad, rows.fetch, lambda row: row)
    assert rows.asked == []


def test_the_public_key_verifies_what_the_private_key_signed_and_cannot_sign() -> None:
    private = private_pem(new_private_key())
    verifier = IdentityVerifier(public_pem(load_private_key(private)))
    identity = Identity("acme", "key_1", frozenset({"tasks.read"}))
    assert verifier.decode(IdentitySigner(private).encode(identity)) == identity
    assert not hasattr(verifier, "encode")
    # A token made with the public key as an HMAC secret (algorithm confusion) is refused.
    header = base64url(b'{"alg":"HS256","typ":"JWT"}')
    claims = base64url(
        b'{"iss":"farm-auth","aud":"farm","sub":"k","tenant":"acme","exp":2147483647}'
    )
    signed = f"{header}.{claims}".encode()
    mac = hmac.new(public_pem(load_private_key(private)).encode(), signed, hashlib.sha256)
    forged = f"{header}.{claims}.{base64url(mac.digest())}"
    with pytest.raises(Unauthenticated):
        verifier.decode(forged)


def test_a_credential_carries_its_role_and_only_its_roles_scope() -> None:
    signer = IdentitySigner(private_pem(new_private_key()))
    agent = signer.decode(signer.credential(CredentialRole.AGENT, "agent-1"))
    service = signer.decode(signer.credential(CredentialRole.SERVICE, "storage"))
    assert (agent.key_id, agent.role, agent.scopes, agent.tenant) == (
        "agent:agent-1",
        CredentialRole.AGENT,
        frozenset({"agent"}),
        "",
    )
    assert (service.role, service.scopes) == (CredentialRole.SERVICE, frozenset({"internal"}))
    assert agent.acting_for("acme").tenant == "acme"


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_verified_token_is_checked_again_once_it_has_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = IdentitySigner(private_pem(new_private_key()), ttl_seconds=30)
    token = codec.encode(Identity("acme", "k", frozenset()))
    checked: list[str] = []
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        checked.append(args[0])
        return real_decode(*args, **kwargs)

    monkeypatch.setattr("farm_core.identity.jwt.decode", counting_decode)
    codec.decode(token)
    codec.decode(token)
    assert len(checked) == 1  # the second call found it verified
    later = time.time() + 60
    monkeypatch.setattr("farm_core.identity.time.time", lambda: later)
    codec.decode(token)
    assert len(checked) == 2  # past its expiry it is checked afresh, not remembered


def test_the_signer_hands_out_the_same_token_for_a_while_then_a_fresh_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    codec = IdentitySigner(private_pem(new_private_key()), ttl_seconds=60, reuse_seconds=100)
    identity = Identity("acme", "k", frozenset({"tasks.read"}))
    first = codec.encode(identity)
    start_wall, start_mono = time.time(), time.monotonic()
    monkeypatch.setattr("farm_core.identity.time.time", lambda: start_wall + 5)
    monkeypatch.setattr("farm_core.identity.time.monotonic", lambda: start_mono + 5)
    assert codec.encode(identity) == first
    assert codec.encode(Identity("acme", "k", frozenset({"tasks.write"}))) != first
    # Reuse is capped at half the lifetime: every token handed out has 30 s left.
    monkeypatch.setattr("farm_core.identity.time.time", lambda: start_wall + 31)
    monkeypatch.setattr("farm_core.identity.time.monotonic", lambda: start_mono + 31)
    fresh = codec.encode(identity)
    assert fresh != first
