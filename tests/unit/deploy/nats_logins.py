"""Which NATS user each farm service of a deployment logs in as, and the config it must run."""

from farm_cli.launcher.nats_users import (
    SHARED_AGENT_USER,
    deployment_users,
    password_variable,
    render_deployment_config,
)
from farm_core.nats_roles import NatsRole

SERVICE_USERS = {
    "auth": "auth",
    "storage": "storage",
    "scheduler": "scheduler",
    "agent": SHARED_AGENT_USER,
}
"""The services that connect to NATS and their user (MCP and the console do not connect)."""
USERS = deployment_users(0)
ROLES = {user.name: user.role for user in USERS}
EXPECTED_ROLES = {
    "auth": NatsRole.CORE,
    "storage": NatsRole.STORAGE,
    "scheduler": NatsRole.CORE,
    "agent": NatsRole.SHARED_AGENT,
}
"""The role each service needs: a user of another role would get too much or too little."""


def current_config() -> str:
    """users.conf as `farm nats-config` renders it now from farm_core/nats_roles.py."""
    return render_deployment_config(USERS)


def password_variables() -> dict[str, str]:
    """Each deployment user's password variable in users.conf."""
    return {user.name: password_variable(user.name) for user in USERS}


def check_roles() -> None:
    """Each service's user has the role the service needs."""
    for service, user in SERVICE_USERS.items():
        assert ROLES[user] is EXPECTED_ROLES[service], service
