"""API key rules: secrets, ids, keyed hashes, request validation, refusals."""

import datetime as dt
import re

import pytest

from farm_auth.keys import (
    BOOTSTRAP_KEY_NAME,
    KeyRecord,
    SecretHasher,
    issue_key,
    new_key_id,
    new_secret,
    refusal,
    validate_spec,
)
from farm_core.errors import InvalidArgument
from farm_core.key_limits import MAX_TTL_SECONDS
from farm_core.scopes import PUBLIC_SCOPES

PEPPER = "p" * 40
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def test_secret_is_prefixed_and_unguessable() -> None:
    secrets = {new_secret() for _ in range(100)}

    assert len(secrets) == 100
    for secret in secrets:
        assert re.fullmatch(r"bf_[A-Za-z0-9_-]{43}", secret)


def test_key_id_is_key_and_16_hex_digits() -> None:
    assert re.fullmatch(r"key_[0-9a-f]{16}", new_key_id())
    assert new_key_id() != new_key_id()


def test_hash_is_stable_keyed_and_hides_the_secret() -> None:
    hasher = SecretHasher(PEPPER)
    secret = new_secret()

    digest = hasher.hash(secret)

    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert hasher.hash(secret) == digest
    assert SecretHasher("q" * 40).hash(secret) != digest
    assert hasher.hash(new_secret()) != digest
    assert secret not in digest


def test_matches_only_the_secret_that_was_hashed() -> None:
    hasher = SecretHasher(PEPPER)
    secret = new_secret()

    assert hasher.matches(secret, hasher.hash(secret))
    assert not hasher.matches(secret + "x", hasher.hash(secret))


def test_empty_pepper_is_refused() -> None:
    with pytest.raises(ValueError, match="pepper"):
        SecretHasher("")


def test_valid_request_is_accepted_as_given() -> None:
    spec = validate_spec("ci", ["tasks.read", "admin"], "acme-1", 3600)

    assert spec.name == "ci"
    assert spec.scopes == ("tasks.read", "admin")
    assert spec.tenant == "acme-1"
    assert spec.lifetime == dt.timedelta(hours=1)


def test_zero_ttl_means_never_expires_and_empty_tenant_means_callers() -> None:
    spec = validate_spec("x" * 100, sorted(PUBLIC_SCOPES), "", 0)

    assert spec.scopes == tuple(sorted(PUBLIC_SCOPES))
    assert spec.lifetime is None
    assert spec.tenant == ""


@pytest.mark.parametrize(
    ("name", "scopes", "tenant", "ttl_seconds", "field", "detail"),
    [
        ("", ["admin"], "", 0, "name", "1 to 100 characters"),
        ("x" * 101, ["admin"], "", 0, "name", "got 101"),
        ("   ", ["admin"], "", 0, "name", "blanks"),
        (BOOTSTRAP_KEY_NAME, ["admin"], "", 0, "name", "reserved"),
        ("ci", [], "", 0, "scopes", "at least one"),
        ("ci", ["tasks.read", "root"], "", 0, "scopes", "unknown scope 'root'"),
        ("ci", ["internal"], "", 0, "scopes", "unknown scope 'internal'"),
        ("ci", ["admin", "tasks.read", "admin"], "", 0, "scopes", "'admin' is listed more"),
        ("ci", ["admin"], "", -1, "ttlSeconds", "got -1"),
        ("ci", ["admin"], "", MAX_TTL_SECONDS + 1, "ttlSeconds", "10 years"),
        ("ci", ["admin"], "Acme", 0, "tenant", "'Acme'"),
        ("ci", ["admin"], "-acme", 0, "tenant", "starting with"),
        ("ci", ["admin"], "acme\n", 0, "tenant", "lower-case"),
        ("ci", ["admin"], "a" * 64, 0, "tenant", "1 to 63"),
        ("ci", ["admin"], "acme_co", 0, "tenant", "'acme_co'"),
    ],
)
def test_invalid_request_names_its_field(
    name: str, scopes: list[str], tenant: str, ttl_seconds: int, field: str, detail: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_spec(name, scopes, tenant, ttl_seconds)

    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ")
    assert detail in caught.value.message


def test_longest_allowed_values_are_kept_as_given() -> None:
    spec = validate_spec("n" * 100, ["admin"], "a" * 63, MAX_TTL_SECONDS)

    assert (spec.name, spec.scopes, spec.tenant) == ("n" * 100, ("admin",), "a" * 63)
    assert spec.lifetime == dt.timedelta(days=3650)


def test_issued_key_keeps_only_the_hash_of_its_secret() -> None:
    hasher = SecretHasher(PEPPER)
    spec = validate_spec("ci", ["tasks.read"], "", 60)

    record, secret = issue_key(spec, "acme", hasher, NOW)

    assert hasher.matches(secret, record.secret_hash)
    assert secret not in repr(record)
    assert (record.tenant, record.name, record.scopes) == ("acme", "ci", ("tasks.read",))
    assert record.expire_time == NOW + dt.timedelta(seconds=60)
    assert record.revoke_time is None
    identity = record.identity("default")
    assert (identity.tenant, identity.key_id, identity.key_name) == ("acme", record.id, "ci")
    assert identity.scopes == frozenset({"tasks.read"})
    assert not identity.operator


def test_only_an_admin_of_the_bootstrap_tenant_is_an_operator() -> None:
    hasher = SecretHasher("p" * 40)
    admin_spec = validate_spec("ops", ["admin"], "", 0)
    admin, _ = issue_key(admin_spec, "default", hasher, NOW)
    tenant_admin, _ = issue_key(admin_spec, "acme", hasher, NOW)
    reader, _ = issue_key(validate_spec("ro", ["tasks.read"], "", 0), "default", hasher, NOW)

    assert admin.identity("default").operator
    assert not tenant_admin.identity("default").operator
    assert not reader.identity("default").operator


def record(**changes: object) -> KeyRecord:
    values: dict[str, object] = {
        "id": "key_0",
        "tenant": "acme",
        "name": "ci",
        "scopes": ("admin",),
        "secret_hash": "0" * 64,
        "create_time": NOW,
    }
    return KeyRecord(**{**values, **changes})  # type: ignore[arg-type]


def test_key_is_refused_once_revoked_or_expired() -> None:
    assert refusal(record(), NOW) is None
    assert refusal(record(expire_time=NOW + dt.timedelta(seconds=1)), NOW) is None

    expired = refusal(record(expire_time=NOW), NOW)
    revoked = refusal(record(revoke_time=NOW, expire_time=NOW), NOW)

    assert expired is not None
    assert (expired.outcome, expired.message) == ("expired", "API key expired")
    assert revoked is not None
    assert (revoked.outcome, revoked.message) == ("revoked", "API key revoked")
