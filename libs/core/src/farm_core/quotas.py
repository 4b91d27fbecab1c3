"""A tenant's quotas as the auth service vouches for them in the identity token."""

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class TenantQuotas:
    """How much of the farm a tenant may hold at once; 0 means unlimited."""

    max_queued_tasks: int = 0
    max_running_tasks: int = 0
    max_artifact_bytes: int = 0
    max_open_sessions: int = 0

    def to_claims(self) -> dict[str, int]:
        """The quotas as the identity token's `quota` claim."""
        return asdict(self)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> "TenantQuotas":
        """The quotas in a `quota` claim; a missing or malformed entry is unlimited."""
        values = {}
        for name in (
            "max_queued_tasks",
            "max_running_tasks",
            "max_artifact_bytes",
            "max_open_sessions",
        ):
            value = claims.get(name, 0)
            values[name] = value if isinstance(value, int) and value > 0 else 0
        return cls(**values)
