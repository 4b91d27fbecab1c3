"""The check counts a console call's refused key against the browser only the console can name."""

import time

import pytest

from farm_auth.console_clients import ConsoleClients
from farm_core.console_headers import CONSOLE_CLIENT_HEADER, CONSOLE_CREDENTIAL_HEADER
from farm_core.identity import CredentialRole, Identity, IdentitySigner, IdentityVerifier
from farm_core.identity_keys import new_private_key, private_pem
from farm_core.revocations import Revocation, RevokedBy, RevokedCredentials

PRIVATE_KEY = new_private_key()
SIGNER = IdentitySigner(private_pem(PRIVATE_KEY))
CONSOLE_CREDENTIAL = SIGNER.credential(CredentialRole.CONSOLE, "console")
CONSOLE_PEER = "10.1.0.5"


def clients(*revocations: Revocation) -> ConsoleClients:
    revoked = RevokedCredentials()
    for revocation in revocations:
        revoked.add(revocation)
    revoked.loaded = True
    return ConsoleClients(IdentityVerifier(PRIVATE_KEY.public_key(), revoked))


def counted(console: ConsoleClients, credential: str | None, browser: str | None) -> str:
    headers = {}
    if credential is not None:
        headers[CONSOLE_CREDENTIAL_HEADER] = credential
    if browser is not None:
        headers[CONSOLE_CLIENT_HEADER] = browser
    return console.counted_address(headers, CONSOLE_PEER)


def test_the_console_credential_makes_the_named_browser_the_counted_address() -> None:
    assert counted(clients(), CONSOLE_CREDENTIAL, "192.0.2.7") == "192.0.2.7"
    assert counted(clients(), CONSOLE_CREDENTIAL, "2001:DB8:0:0::1") == "2001:db8::1"


@pytest.mark.parametrize(
    ("credential", "browser"),
    [
        pytest.param(None, "192.0.2.7", id="no credential"),
        pytest.param(CONSOLE_CREDENTIAL, None, id="no browser"),
        pytest.param(CONSOLE_CREDENTIAL, "not-an-address", id="not an address"),
        pytest.param("bf_an-api-key", "192.0.2.7", id="not a credential"),
        pytest.param(SIGNER.credential(CredentialRole.MCP, "mcp"), "192.0.2.7", id="another role"),
        pytest.param(
            IdentitySigner(private_pem(new_private_key())).credential(
                CredentialRole.CONSOLE, "console"
            ),
            "192.0.2.7",
            id="signed with another key",
        ),
        pytest.param(
            SIGNER.encode(Identity(tenant="t", key_id="key_1", scopes=frozenset({"admin"}))),
            "192.0.2.7",
            id="an API key's identity",
        ),
    ],
)
def test_anything_but_a_console_credential_and_an_address_counts_the_peer(
    credential: str | None, browser: str | None
) -> None:
    assert counted(clients(), credential, browser) == CONSOLE_PEER


def test_a_revoked_console_credential_counts_the_peer() -> None:
    revoked = Revocation(RevokedBy.SUBJECT, "console:console", time.time() + 1)

    assert counted(clients(revoked), CONSOLE_CREDENTIAL, "192.0.2.7") == CONSOLE_PEER
