"""The scopes an API key can carry, and what a request must hold to call an RPC."""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """A permission carried by an API key (see the public API contract)."""

    TASKS_WRITE = "tasks.write"
    TASKS_READ = "tasks.read"
    SCRIPT = "script"
    SESSIONS = "sessions"
    ARTIFACTS_READ = "artifacts.read"
    ADMIN = "admin"
    # Held only by the farm's own services (storage reading a tenant's quota); no API
    # key can be created with it.
    INTERNAL = "internal"
    # Held only by an agent's credential: an agent's work (storing what its tasks
    # made); no API key can be created with it.
    AGENT = "agent"
    # Held only by the MCP service's credential: renewing the identity tokens its
    # callers showed it; no API key can be created with it.
    MCP = "mcp"
    # Held only by the web console's credential, which no RPC takes: auth's edge check
    # believes the browser address it names; no API key can be created with it.
    CONSOLE = "console"


CREDENTIAL_SCOPES: frozenset[str] = frozenset(
    {Scope.INTERNAL, Scope.AGENT, Scope.MCP, Scope.CONSOLE}
)
"""The scopes only farm processes' credentials carry."""

PUBLIC_SCOPES: frozenset[str] = frozenset(s.value for s in Scope) - CREDENTIAL_SCOPES

# Methods anyone may call without an identity: health checking and reflection.
OPEN_METHOD_PREFIXES: tuple[str, ...] = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)

ANY_IDENTITY: str = ""
"""A method-scope rule meaning: any valid identity may call it."""

NO_IDENTITY: str = "<no identity>"
"""A method-scope rule meaning: callable without an identity (no RPC has it today: the
edge's check, where identities come from, is served over HTTP by farm_auth.check_http)."""


@dataclass(frozen=True)
class RpcRule:
    """What calling one RPC takes, and what the audit log records of it."""

    # A Scope, ANY_IDENTITY or NO_IDENTITY.
    scope: str
    # Whether a call changes something: every such call is audited, not only refusals.
    mutating: bool = False
    # The request field (dotted path) naming the object the call is about.
    target: str = ""
    # The response field naming the object a create made, when the request names none.
    created: str = ""
    # What only an operator (an admin of the bootstrap tenant) may do by this call, as
    # its refusal says; empty: any caller with the scope. An RPC that needs an operator
    # only for some requests (another tenant's keys) leaves the check to its handler.
    operator_only: str = ""


_TASKS = "/farm.tasks.v1.TaskService/"
_ADMIN = "/farm.admin.v1.AdminService/"
_ARTIFACTS = "/farm.storage.v1.ArtifactService/"
_INGEST = "/farm.storage.v1.ArtifactIngestService/"
_BASELINES = "/farm.storage.v1.BaselineService/"
_PROFILES = "/farm.storage.v1.ProfileService/"
_AUTH = "/farm.auth.v1.AuthService/"
_RENEWAL = "/farm.auth.v1.IdentityRenewalService/"
_AUDIT = "/farm.audit.v1.AuditService/"
_SESSIONS = "/farm.sessions.v1.SessionService/"
_MANAGE_FLEET = "manage the shared fleet of agents"
_SEE_FLEET = "see the status of the whole farm"

RPC_RULES: Mapping[str, RpcRule] = {
    # Tasks (scheduler). A task with a `script` action also needs Scope.SCRIPT,
    # which the scheduler checks on the request's content.
    f"{_TASKS}CreateTask": RpcRule(Scope.TASKS_WRITE, mutating=True, created="id"),
    f"{_TASKS}CreateTasks": RpcRule(Scope.TASKS_WRITE, mutating=True),
    f"{_TASKS}RunTask": RpcRule(Scope.TASKS_WRITE, mutating=True, created="id"),
    f"{_TASKS}CancelTask": RpcRule(Scope.TASKS_WRITE, mutating=True, target="id"),
    # Audited per id, as CancelTask is (audit.py).
    f"{_TASKS}CancelTasks": RpcRule(Scope.TASKS_WRITE, mutating=True),
    f"{_TASKS}GetTask": RpcRule(Scope.TASKS_READ, target="id"),
    f"{_TASKS}ListTasks": RpcRule(Scope.TASKS_READ),
    f"{_TASKS}WatchTask": RpcRule(Scope.TASKS_READ, target="id"),
    # The key that signs the tenant's callbacks: whoever may ask for callbacks.
    f"{_TASKS}GetWebhookSecret": RpcRule(Scope.TASKS_WRITE),
    f"{_TASKS}RotateWebhookSecret": RpcRule(Scope.TASKS_WRITE, mutating=True),
    # The fleet and dead letters (scheduler).
    f"{_ADMIN}ListAgents": RpcRule(Scope.ADMIN, operator_only=_MANAGE_FLEET),
    f"{_ADMIN}DrainAgent": RpcRule(
        Scope.ADMIN, mutating=True, target="id", operator_only=_MANAGE_FLEET
    ),
    f"{_ADMIN}GetFleetStatus": RpcRule(Scope.ADMIN, operator_only=_SEE_FLEET),
    f"{_ADMIN}ListDeadLetters": RpcRule(Scope.ADMIN),
    f"{_ADMIN}RequeueDeadLetter": RpcRule(Scope.ADMIN, mutating=True, target="task_id"),
    # Sessions (scheduler). A command with a `script` action also needs Scope.SCRIPT.
    f"{_SESSIONS}CreateSession": RpcRule(Scope.SESSIONS, mutating=True, created="id"),
    f"{_SESSIONS}GetSession": RpcRule(Scope.SESSIONS, target="id"),
    f"{_SESSIONS}ListSessions": RpcRule(Scope.SESSIONS),
    f"{_SESSIONS}CloseSession": RpcRule(Scope.SESSIONS, mutating=True, target="id"),
    f"{_SESSIONS}RunSessionCommand": RpcRule(Scope.SESSIONS, mutating=True, target="id"),
    f"{_SESSIONS}CreateViewToken": RpcRule(Scope.SESSIONS, mutating=True, target="id"),
    # A CDP token attaches as the key would: FARM_AUTH_CDP_NEEDS_SCRIPT checks its scopes.
    f"{_SESSIONS}CreateCdpToken": RpcRule(Scope.SESSIONS, mutating=True, target="id"),
    # Artifacts (storage).
    f"{_ARTIFACTS}GetArtifact": RpcRule(Scope.ARTIFACTS_READ, target="id"),
    f"{_ARTIFACTS}GetArtifactContent": RpcRule(Scope.ARTIFACTS_READ, target="id"),
    f"{_ARTIFACTS}ListArtifacts": RpcRule(Scope.ARTIFACTS_READ),
    f"{_ARTIFACTS}DeleteArtifact": RpcRule(Scope.TASKS_WRITE, mutating=True, target="id"),
    # Agents upload what tasks produced; the task that asked for it is audited.
    f"{_INGEST}UploadArtifact": RpcRule(Scope.AGENT),
    # Agents read and keep the tenant's baselines and profiles for its tasks and sessions.
    f"{_INGEST}GetBaselineImage": RpcRule(Scope.AGENT),
    f"{_INGEST}CreateBaseline": RpcRule(Scope.AGENT),
    f"{_INGEST}GetProfileState": RpcRule(Scope.AGENT),
    f"{_INGEST}SaveProfile": RpcRule(Scope.AGENT),
    # Baselines of visual comparisons and saved browser profiles (storage).
    f"{_BASELINES}ListBaselines": RpcRule(Scope.ARTIFACTS_READ),
    f"{_BASELINES}ApproveBaseline": RpcRule(Scope.TASKS_WRITE, mutating=True, target="id"),
    f"{_BASELINES}DeleteBaseline": RpcRule(Scope.TASKS_WRITE, mutating=True, target="id"),
    f"{_PROFILES}ListProfiles": RpcRule(Scope.ARTIFACTS_READ),
    f"{_PROFILES}DeleteProfile": RpcRule(Scope.TASKS_WRITE, mutating=True, target="name"),
    # Keys and tenants (auth).
    f"{_AUTH}CreateApiKey": RpcRule(Scope.ADMIN, mutating=True, created="api_key.id"),
    f"{_AUTH}ListApiKeys": RpcRule(Scope.ADMIN),
    f"{_AUTH}RevokeApiKey": RpcRule(Scope.ADMIN, mutating=True, target="id"),
    f"{_AUTH}WhoAmI": RpcRule(ANY_IDENTITY),
    # Limits are the farm's to give: a tenant's own admin may not raise them.
    f"{_AUTH}UpdateApiKey": RpcRule(
        Scope.ADMIN, mutating=True, target="id", operator_only="change a key's rate limit"
    ),
    f"{_AUTH}RotateApiKey": RpcRule(Scope.ADMIN, mutating=True, target="id"),
    # Any key may read its own tenant; the handler decides about others
    # (a credential of role service, scope internal, reads any tenant's).
    f"{_AUTH}GetTenant": RpcRule(ANY_IDENTITY, target="name"),
    f"{_AUTH}UpdateTenantLimits": RpcRule(
        Scope.ADMIN, mutating=True, target="name", operator_only="change a tenant's quotas"
    ),
    # The farm's own processes' credentials are the farm's: an operator's to revoke.
    f"{_AUTH}RevokeCredential": RpcRule(
        Scope.ADMIN,
        mutating=True,
        target="id",
        created="subject",
        operator_only="revoke a farm process's credential",
    ),
    f"{_AUDIT}ListAuditRecords": RpcRule(Scope.ADMIN),
    # The MCP service renews its callers' identity tokens (internal, not routed by Envoy).
    f"{_RENEWAL}RenewIdentity": RpcRule(Scope.MCP),
}
"""Every RPC the farm serves, by full method name. A method missing here is refused."""

MUTATING_METHODS: frozenset[str] = frozenset(m for m, r in RPC_RULES.items() if r.mutating)
"""The RPCs that change something: each call is written to the audit log."""


def accepts_credentials(scopes: Mapping[str, str]) -> bool:
    """Whether a service with these method scopes lets a farm process's credential call it."""
    return any(scope in CREDENTIAL_SCOPES or scope == ANY_IDENTITY for scope in scopes.values())


def method_scopes(*services: str) -> dict[str, str]:
    """The scope each method of `services` (full names, e.g. "farm.tasks.v1.TaskService") needs."""
    prefixes = tuple(f"/{service}/" for service in services)
    return {m: r.scope for m, r in RPC_RULES.items() if m.startswith(prefixes)}
