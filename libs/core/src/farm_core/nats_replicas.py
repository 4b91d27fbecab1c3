"""How many copies of each JetStream stream and key-value bucket the farm's NATS keeps.

One nats-server holds one copy (the default); a cluster of three keeps three, so that
losing one server loses no queued task, event or bucket entry. Every process that
creates a stream or a bucket reads the same setting, FARM_NATS_REPLICAS.
"""

import functools

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class NatsReplicaSettings(BaseSettings):
    """FARM_NATS_REPLICAS, read from the environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    replicas: int = Field(
        default=1,
        ge=1,
        le=5,
        validation_alias=AliasChoices("FARM_NATS_REPLICAS"),
        description=(
            "Copies of each JetStream stream and key-value bucket the farm creates "
            "(1 for one nats-server; 3 for a cluster of three). JetStream allows at most 5."
        ),
    )


@functools.cache
def nats_replicas() -> int:
    """The replica count streams and buckets are created with (FARM_NATS_REPLICAS, default 1)."""
    return NatsReplicaSettings().replicas
