"""The user CLI's key, credential, tenant and webhook commands against in-process fake services."""

import json

import jwt
import pytest

from farm_cli.main import main
from farm_core.identity import CredentialRole, IdentitySigner, credential_id
from farm_core.identity_keys import new_private_key, private_pem
from farm_core.key_limits import MAX_RATE
from tests.unit.cli.conftest import KEY
from tests.unit.cli.fake_calls import Calls


def test_key_create_prints_the_secret_once_with_a_warning(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["key", "create", "ci", "--scope", "tasks.read", "tasks.write", "--scope", "admin"]
    assert main(argv) == 0
    request, _ = calls.last("CreateApiKey")
    assert list(request.scopes) == ["tasks.read", "tasks.write", "admin"]
    captured = capsys.readouterr()
    assert json.loads(captured.out)["secret"] == "bf_new-secret"
    assert "bf_new-secret" in captured.err and "NEVER shown again" in captured.err


@pytest.mark.parametrize(
    "argv", [["key", "create", "ci", "--scope", "admin"], ["key", "rotate", "key7"]]
)
def test_key_secret_with_json_is_stdout_alone_without_the_warning(
    calls: Calls, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["secret"]
    assert captured.err == ""


def test_key_create_needs_a_scope(calls: Calls) -> None:
    with pytest.raises(SystemExit):
        main(["key", "create", "ci"])


def test_key_list_and_revoke(calls: Calls, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["key", "list"]) == 0
    assert json.loads(capsys.readouterr().out)["apiKeys"][0]["id"] == "key1"
    assert main(["key", "revoke", "key7"]) == 0
    assert calls.last("RevokeApiKey")[0].id == "key7"


def test_credential_revoke_sends_an_id_or_a_subject_never_the_credential(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = IdentitySigner(private_pem(new_private_key()))
    credential = signer.credential(CredentialRole.AGENT, "pi-3")

    assert main(["credential", "revoke", credential]) == 0
    assert calls.last("RevokeCredential")[0].id == credential_id(credential)
    assert json.loads(capsys.readouterr().out)["id"] == credential_id(credential)
    assert main(["credential", "revoke", "agent:pi-3"]) == 0
    assert calls.last("RevokeCredential")[0].subject == "agent:pi-3"
    assert main(["credential", "revoke", "cred_1_abc"]) == 0
    assert calls.last("RevokeCredential")[0].id == "cred_1_abc"
    without_id = jwt.encode({"sub": "agent:old"}, "s" * 32, algorithm="HS256")
    assert main(["credential", "revoke", without_id]) == 2
    assert "revoke its subject" in capsys.readouterr().err


def test_key_rotate_shows_the_new_secret_once_and_sends_the_grace(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["key", "rotate", "key7", "--grace-seconds", "0"]) == 0
    request, _ = calls.last("RotateApiKey")
    assert request.id == "key7" and request.HasField("grace_seconds")
    assert request.grace_seconds == 0
    assert "bf_rotated-secret" in capsys.readouterr().err
    assert main(["key", "rotate", "key7"]) == 0
    assert not calls.last("RotateApiKey")[0].HasField("grace_seconds")


def test_key_rate_sends_only_the_limits_given(calls: Calls) -> None:
    assert main(["key", "rate", "key7", "--burst", "9"]) == 0
    request, _ = calls.last("UpdateApiKey")
    assert request.HasField("rate_limit_burst") and request.rate_limit_burst == 9
    assert not request.HasField("rate_limit_per_second")


def test_the_largest_numbers_that_fit_their_fields_are_sent(calls: Calls) -> None:
    # A key's rate stops at auth's bound (farm_core.key_limits), below its int32 field's.
    assert main(["key", "rate", "key7", "--burst", str(MAX_RATE)]) == 0
    assert calls.last("UpdateApiKey")[0].rate_limit_burst == MAX_RATE
    assert main(["tenant", "limits", "acme", "--max-artifact-bytes", str(2**63 - 1)]) == 0
    assert calls.last("UpdateTenantLimits")[0].max_artifact_bytes == 2**63 - 1


def test_tenant_limits_sends_only_the_quotas_given(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tenant", "limits", "acme", "--max-queued-tasks", "0"]) == 0
    request, _ = calls.last("UpdateTenantLimits")
    assert request.name == "acme" and request.HasField("max_queued_tasks")
    assert not request.HasField("max_artifact_bytes")
    assert json.loads(capsys.readouterr().out)["name"] == "acme"
    assert main(["tenant", "get", "acme"]) == 0
    assert calls.last("GetTenant")[0].name == "acme"


def test_tenant_limits_without_a_quota_is_refused_before_any_call(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(calls.seen)
    assert main(["tenant", "limits", "acme"]) == 2
    assert "give at least one of --max-queued-tasks" in capsys.readouterr().err
    assert calls.seen[before:] == []


def test_webhook_secret_prints_it_and_rotates_only_when_asked(
    calls: Calls, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["webhook", "secret", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"secret": "whsec_current"}
    assert calls.last("GetWebhookSecret")[1]["authorization"] == f"Bearer {KEY}"
    assert main(["webhook", "secret", "--rotate"]) == 0
    assert json.loads(capsys.readouterr().out) == {"secret": "whsec_new"}
    calls.last("RotateWebhookSecret")
