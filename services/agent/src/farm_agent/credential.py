"""What an agent shows storage on each call: its credential, and the tenant it works for."""

from pydantic import SecretStr

from farm_agent.errors import TaskFailure
from farm_core.identity import IDENTITY_HEADER, TENANT_HEADER
from farm_core.task_errors import ErrorCode


def agent_metadata(credential: SecretStr | None, tenant: str) -> tuple[tuple[str, str], ...]:
    """The call metadata for storage; TaskFailure(UPLOAD_FAILED) when the agent has no credential.

    The agent holds no key that can sign an identity: the credential was issued to it
    (FARM_AGENT_CREDENTIAL), and lets it do only an agent's work.
    """
    if credential is None:
        raise TaskFailure(
            ErrorCode.UPLOAD_FAILED,
            "this agent has no credential for storage: set FARM_AGENT_CREDENTIAL",
        )
    return ((IDENTITY_HEADER, credential.get_secret_value()), (TENANT_HEADER, tenant))
