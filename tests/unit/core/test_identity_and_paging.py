import pytest

from farm_core.db import utcnow
from farm_core.errors import InvalidArgument, Unauthenticated
from farm_core.identity import Identity, IdentityCodec
from farm_core.paging import Cursor, decode_cursor, encode_cursor, page_size, split_page
from farm_core.quotas import TenantQuotas


def test_identity_round_trips_through_a_signed_token() -> None:
    codec = IdentityCodec("s" * 40)
    identity = Identity("acme", "key_1", frozenset({"tasks.read"}), "ci")
    assert codec.decode(codec.encode(identity)) == identity


def test_the_operator_flag_travels_in_the_token() -> None:
    codec = IdentityCodec("s" * 40)
    operator = Identity("default", "key_1", frozenset({"admin"}), operator=True)
    assert codec.decode(codec.encode(operator)).operator
    assert not codec.decode(codec.encode(Identity("acme", "k", frozenset()))).operator


def test_the_tenants_quotas_travel_in_the_token() -> None:
    codec = IdentityCodec("s" * 40)
    quotas = TenantQuotas(max_queued_tasks=5, max_running_tasks=0, max_artifact_bytes=1024)
    identity = Identity("acme", "key_1", frozenset(), quotas=quotas)
    assert codec.decode(codec.encode(identity)).quotas == quotas
    assert codec.decode(codec.encode(Identity("acme", "k", frozenset()))).quotas is None


def test_token_signed_with_another_secret_is_refused() -> None:
    token = IdentityCodec("a" * 40).encode(Identity("acme", "k", frozenset()))
    with pytest.raises(Unauthenticated):
        IdentityCodec("b" * 40).decode(token)


def test_expired_token_is_refused() -> None:
    codec = IdentityCodec("s" * 40, ttl_seconds=-10)
    with pytest.raises(Unauthenticated):
        codec.decode(codec.encode(Identity("acme", "k", frozenset())))


def test_page_token_round_trips_and_garbage_names_the_field() -> None:
    cursor = Cursor(utcnow(), "abc")
    assert decode_cursor(encode_cursor(cursor)) == cursor
    with pytest.raises(InvalidArgument, match=r"^page_token:"):
        decode_cursor("not-a-token")
    with pytest.raises(InvalidArgument, match=r"^page_size:"):
        page_size(5000)
    assert page_size(0) == 50


def test_split_page_hands_out_a_token_only_when_a_row_is_left_over() -> None:
    now = utcnow()
    rows = [Cursor(now, f"id-{n}") for n in range(3)]

    page, token = split_page(rows, 2, lambda row: row)
    assert page == rows[:2]
    assert decode_cursor(token) == rows[1]

    assert split_page(rows[:2], 2, lambda row: row) == (rows[:2], "")
    assert split_page([], 2, lambda row: row) == ([], "")
