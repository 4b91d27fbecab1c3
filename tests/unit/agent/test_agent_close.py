"""The agent's close: every part is closed though one before it fails."""

from pathlib import Path
from typing import Any

import pytest

from farm_agent.server import AgentService
from farm_agent.settings import AgentSettings


class Part:
    """A part of the agent that notes its close in `closed`, or fails it with `error`."""

    def __init__(self, name: str, closed: list[str], error: Exception | None = None) -> None:
        self.name = name
        self.closed = closed
        self.error = error

    async def close(self) -> None:
        self.closed.append(self.name)
        if self.error is not None:
            raise self.error


async def test_the_browsers_are_closed_though_leaving_the_agents_bucket_failed(
    tmp_path: Path,
) -> None:
    service = AgentService(AgentSettings(FARM_HOME=str(tmp_path)), on_drain_notice=lambda: None)
    closed: list[str] = []
    gone = ConnectionError("nats: connection closed")
    parts: dict[str, Any] = {
        "presence": Part("presence", closed, gone),
        "sessions": Part("sessions", closed),
        "intake": Part("intake", closed),
        "pool": Part("pool", closed),
        "_uploader": Part("uploader", closed),
        "_saved": Part("saved", closed),
    }
    for attribute, part in parts.items():
        setattr(service, attribute, part)

    with pytest.raises(ConnectionError) as raised:
        await service.close()

    assert raised.value is gone
    assert closed == ["presence", "sessions", "intake", "pool", "uploader", "saved"]
