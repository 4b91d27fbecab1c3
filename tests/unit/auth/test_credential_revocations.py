"""What a RevokeCredential request may name: an id or a ROLE:NAME subject."""

import pytest

from farm_auth.credential_revocations import revocation_target
from farm_core.errors import InvalidArgument
from farm_core.revocations import RevokedBy


@pytest.mark.parametrize("subject", ["agent:pi-3", "mcp:mcp", "console:console", "service:x"])
def test_every_role_a_credential_is_issued_for_can_be_revoked_by_subject(subject: str) -> None:
    assert revocation_target("", subject) == (RevokedBy.SUBJECT, subject, None)


def test_a_bad_subject_is_refused_naming_every_role() -> None:
    with pytest.raises(InvalidArgument) as refused:
        revocation_target("", "nope:x")
    assert "'<agent|service|mcp|console>:<name>'" in str(refused.value)
