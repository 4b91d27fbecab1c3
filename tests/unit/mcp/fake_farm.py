"""A fake farm for the MCP tools' unit tests: it answers queued results and keeps the commands."""

from dataclasses import dataclass, field
from typing import Any

from mcp.types import TextContent

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools.browser import FarmBrowser
from farm_mcp_tools.farm import Artifact, FarmCallFailed

PNG = b"\x89PNG\r\n\x1a\nfake"


@dataclass
class FakeFarm:
    """Answers like the farm: results queued by the test, commands kept."""

    results: list[tasks_pb2.TaskResult | FarmCallFailed] = field(default_factory=list)
    commands: list[sessions_pb2.SessionCommand] = field(default_factory=list)
    opened: list[sessions_pb2.SessionSpec] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    credentials: list[Any] = field(default_factory=list)

    def artifact_link(self, artifact_id: str) -> str:
        return f"http://farm/v1/artifacts/{artifact_id}:content"

    async def open_session(self, spec: Any, credentials: Any, time_limit: float) -> Any:
        self.opened.append(spec)
        return sessions_pb2.Session(id=f"ses_{len(self.opened)}")

    async def run_command(
        self, session_id: str, command: Any, credentials: Any, time_limit: float
    ) -> Any:
        self.commands.append(command)
        self.credentials.append(credentials)
        answer = self.results.pop(0) if self.results else page_result()
        if isinstance(answer, FarmCallFailed):
            raise answer
        return answer

    async def close_session(self, session_id: str, credentials: Any, time_limit: float) -> Any:
        self.closed.append(session_id)
        return sessions_pb2.Session(id=session_id, state=sessions_pb2.SESSION_STATE_CLOSED)

    async def artifact(self, artifact_id: str, credentials: Any, time_limit: float) -> Artifact:
        return Artifact(PNG, "image/png")


class OneConnection:
    def __init__(self, browser: FarmBrowser) -> None:
        self._browser = browser

    def browser(self, ctx: Any) -> FarmBrowser:
        return self._browser

    def credentials(self, ctx: Any) -> Any:
        return (("authorization", "Bearer bf_test"),)


def page_result(**fields: Any) -> tasks_pb2.TaskResult:
    return tasks_pb2.TaskResult(title="Form", final_url="http://site/form", **fields)


def texts(result: Any) -> str:
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))
