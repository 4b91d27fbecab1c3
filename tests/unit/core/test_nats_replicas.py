"""FARM_NATS_REPLICAS: the copies every stream and bucket is created with."""

import pytest
from pydantic import ValidationError

from farm_core.nats_replicas import NatsReplicaSettings


def test_one_copy_unless_told() -> None:
    assert NatsReplicaSettings().replicas == 1


def test_a_cluster_of_three_keeps_three(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_NATS_REPLICAS", "3")
    assert NatsReplicaSettings().replicas == 3


@pytest.mark.parametrize("value", ["0", "6"])
def test_more_than_jetstream_allows_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FARM_NATS_REPLICAS", value)
    with pytest.raises(ValidationError):
        NatsReplicaSettings()
