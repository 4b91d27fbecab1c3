"""The scopes an API key can carry, and what a request must hold to call an RPC."""

from enum import StrEnum


class Scope(StrEnum):
    """A permission carried by an API key (see the public API contract)."""

    TASKS_WRITE = "tasks.write"
    TASKS_READ = "tasks.read"
    SCRIPT = "script"
    SESSIONS = "sessions"
    ARTIFACTS_READ = "artifacts.read"
    ADMIN = "admin"
    # Held only by the farm's own processes (agents uploading artifacts); no API
    # key can be created with it.
    INTERNAL = "internal"


PUBLIC_SCOPES: frozenset[str] = frozenset(s.value for s in Scope if s is not Scope.INTERNAL)

# Methods anyone may call without an identity: health checking and reflection.
OPEN_METHOD_PREFIXES: tuple[str, ...] = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
