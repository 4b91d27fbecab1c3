"""Revoked credentials as a verifier holds them: by id until expiry, by subject up to a time."""

import time

import pytest

from farm_core.errors import Unauthenticated, Unavailable
from farm_core.identity import (
    CredentialRole,
    Identity,
    IdentitySigner,
    IdentityVerifier,
    credential_id,
)
from farm_core.identity_keys import new_private_key, private_pem
from farm_core.revocations import (
    Revocation,
    RevokedBy,
    RevokedCredentials,
    credential_id_expiry,
)

PRIVATE_KEY = new_private_key()
SIGNER = IdentitySigner(private_pem(PRIVATE_KEY))
PUBLIC_KEY = PRIVATE_KEY.public_key()


def loaded(*revocations: Revocation) -> RevokedCredentials:
    """Revocations read in full."""
    revoked = RevokedCredentials()
    for revocation in revocations:
        revoked.add(revocation)
    revoked.loaded = True
    return revoked


def test_a_credential_id_says_when_the_credential_expires() -> None:
    credential = SIGNER.credential(CredentialRole.AGENT, "agent-1", lifetime_days=1)
    expiry = credential_id_expiry(credential_id(credential))
    assert expiry is not None and abs(expiry - (time.time() + 86400)) < 5
    assert credential_id_expiry("cred_1_xyz") is None


def test_a_revoked_credential_is_refused_and_others_of_the_same_name_are_not() -> None:
    revoked_one = SIGNER.credential(CredentialRole.AGENT, "agent-1")
    other = SIGNER.credential(CredentialRole.AGENT, "agent-1")
    revoked = loaded(Revocation(RevokedBy.ID, credential_id(revoked_one), time.time() + 60))
    verifier = IdentityVerifier(PUBLIC_KEY, revoked)

    assert verifier.decode(other).role is CredentialRole.AGENT
    with pytest.raises(Unauthenticated, match="credential revoked"):
        verifier.decode(revoked_one)


def test_a_revocation_arriving_later_refuses_a_credential_already_verified() -> None:
    credential = SIGNER.credential(CredentialRole.MCP, "mcp")
    revoked = loaded()
    verifier = IdentityVerifier(PUBLIC_KEY, revoked)
    verifier.decode(credential)

    revoked.add(Revocation(RevokedBy.ID, credential_id(credential), time.time() + 60))

    with pytest.raises(Unauthenticated, match="credential revoked"):
        verifier.decode(credential)
    revoked.remove(Revocation(RevokedBy.ID, credential_id(credential), 0).key)
    assert verifier.decode(credential).role is CredentialRole.MCP


def test_a_subject_revocation_refuses_what_was_issued_up_to_it_only() -> None:
    revoked = loaded(Revocation(RevokedBy.SUBJECT, "agent:agent-2", time.time()))

    assert revoked.is_revoked("", "agent:agent-2", time.time() - 1)
    assert not revoked.is_revoked("", "agent:agent-2", time.time() + 5)
    assert not revoked.is_revoked("", "agent:agent-3", time.time() - 1)
    revoked.remove(Revocation(RevokedBy.SUBJECT, "agent:agent-2", 0).key)
    assert not revoked.is_revoked("", "agent:agent-2", time.time() - 1)


def test_an_expired_revocation_by_id_is_dropped() -> None:
    revoked = loaded(Revocation(RevokedBy.ID, "cred_1_x", time.time() - 1))
    assert not revoked.is_revoked("cred_1_x", "agent:a", 0)


def test_credentials_wait_for_the_revocations_and_api_key_tokens_do_not() -> None:
    not_yet = RevokedCredentials()
    verifier = IdentityVerifier(PUBLIC_KEY, not_yet)
    token = SIGNER.encode(Identity("acme", "key_1", frozenset({"tasks.read"})))

    assert verifier.decode(token).tenant == "acme"
    with pytest.raises(Unavailable):
        verifier.decode(SIGNER.credential(CredentialRole.AGENT, "agent-1"))


def test_a_revocation_reads_back_from_its_bucket_value() -> None:
    revocation = Revocation(RevokedBy.SUBJECT, "agent:pi-3", 1234.5)
    assert Revocation.decode(revocation.encode()) == revocation
    assert revocation.key.startswith("subject.") and ":" not in revocation.key
    with pytest.raises(ValueError):
        Revocation.decode(b"{}")
