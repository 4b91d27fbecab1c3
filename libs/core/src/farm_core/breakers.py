"""The target origins' circuit breakers as the farm keeps them: the `farm_breakers` bucket.

A breaker guards one host and port for one tenant (a dead service on one port of a
host does not hold back the others, and one tenant's failures there do not hold back
another tenant's tasks), keyed `<tenant>/<host>=<port>` since NATS keys have no
colon (`<host>=<port>` alone: a breaker of an agent older than tenants' own). The
agents write each breaker (farm_agent.limits.circuit.Circuit.to_bytes: JSON with
`state`, `failures`, `openedAt`); the scheduler reads them for the fleet status and
the breaker gauges. This module is that contract's one reading.
"""

import json
from dataclasses import dataclass
from enum import StrEnum

BREAKERS_BUCKET = "farm_breakers"
# Between host and port in a breaker's key.
_PORT_SEPARATOR = "="
# Between the tenant and the origin in a breaker's key: in neither a host nor a tenant.
_TENANT_SEPARATOR = "/"


def breaker_key(host: str, port: int | None, tenant: str = "") -> str:
    """The bucket key of `tenant`'s breaker of `host` (already key-safe) on `port`."""
    origin = f"{host}{_PORT_SEPARATOR}{port}" if port else host
    return f"{tenant}{_TENANT_SEPARATOR}{origin}" if tenant else origin


def breaker_origin(key: str) -> str:
    """The host and port a breaker's key names, as people write them: `example.com:443`."""
    host, _, port = key.rpartition(_TENANT_SEPARATOR)[2].partition(_PORT_SEPARATOR)
    return f"{host}:{port}" if port else host


def breaker_tenant(key: str) -> str:
    """The tenant whose breaker a key names ("" in a key without one)."""
    return key.rpartition(_TENANT_SEPARATOR)[0]


class BreakerState(StrEnum):
    """A breaker's state as the bucket spells it."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


@dataclass(frozen=True)
class BreakerEntry:
    """One origin's breaker: its state, the failures that led to it, when it last opened."""

    # The host and port it guards (`example.com:443`).
    host: str
    state: BreakerState
    failures: int
    # Wall-clock seconds; 0 for a breaker that never opened.
    opened_at: float
    # The tenant whose tasks it holds back ("" for a breaker of an older agent: every one's).
    tenant: str = ""


def read_breaker(key: str, data: bytes) -> BreakerEntry:
    """The breaker of bucket key `key` from its entry; ValueError if it is not one."""
    try:
        fields = json.loads(data)
        return BreakerEntry(
            host=breaker_origin(key),
            tenant=breaker_tenant(key),
            state=BreakerState(str(fields["state"])),
            failures=int(fields["failures"]),
            opened_at=float(fields["openedAt"]),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a breaker: {error}") from error
