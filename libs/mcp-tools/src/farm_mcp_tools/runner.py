"""How every tool call runs: find the connection's browser, bound the call, map the errors.

A tool's errors are MCP tool errors (`isError`) whose text says what went wrong,
in the farm's words where the farm refused (or was unavailable, or did not answer in
time); never a crash of the server.
"""

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import grpc
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools.browser import FarmBrowser, SessionEnded, StillBusy, StillOpening
from farm_mcp_tools.commands import ArgumentError, snapshot_refs
from farm_mcp_tools.farm import Artifact, Credentials, FarmCallFailed
from farm_mcp_tools.progress import progress_reported
from farm_mcp_tools.replies import ArtifactLink

ToolContext = Context[Any, Any]
"""The MCP request context a tool is handed (it names the connection)."""

# What a call keeps for itself around the farm command's own limit: opening the
# session, fetching an image.
CALL_MARGIN_SECONDS = 10.0


@dataclass(frozen=True)
class ToolLimits:
    """Bounds of every tool call and of what it answers."""

    # A tool call, end to end: opening the session, the command, fetching an image.
    call_seconds: float = 60.0
    # Page content and results longer than this are cut (with a link to the whole).
    max_text_chars: int = 20_000
    # Console messages or requests shown by one call, the newest.
    max_log_lines: int = 200
    # A screenshot larger than this is answered as a link instead of an image: in
    # base64 with its text it must fit one message of 1 MiB, the most the MCP SDK's
    # HTTP client reads (a larger one breaks the call, not just the image).
    max_image_bytes: int = 700 * 1024
    # How long a click, fill, hover, select or press waits for its element (timeoutMs): a
    # model that guessed a selector wrong hears so soon, not at the call's limit.
    action_ms: int = 10_000
    # A call whose client asked for progress hears how long it has waited this often.
    progress_seconds: float = 5.0

    @property
    def command_ms(self) -> int:
        """The farm command's own time limit (timeoutMs), within the call's."""
        return max(1000, math.floor((self.call_seconds - CALL_MARGIN_SECONDS) * 1000))


class DialogShowing(Exception):
    """A tool's command opened a dialog before it made the value the tool answers."""

    def __init__(self, result: tasks_pb2.TaskResult) -> None:
        super().__init__(result.dialog.message)
        self.result = result


class Connections(Protocol):
    """Which browser a tool call drives, and whose credentials it carries."""

    def browser(self, ctx: ToolContext) -> FarmBrowser:
        """The browser of the connection `ctx` came on (made on first use)."""

    def credentials(self, ctx: ToolContext) -> Credentials:
        """Who makes the call, as gRPC metadata for the farm."""


class ToolRunner:
    """Runs tools' commands on their connection's browser, within the limits."""

    def __init__(self, connections: Connections, limits: ToolLimits) -> None:
        self.connections = connections
        self.limits = limits

    async def run(
        self,
        ctx: ToolContext,
        build: Callable[[], sessions_pb2.SessionCommand],
        *,
        element_action: bool = False,
        makes_value: bool = False,
    ) -> tasks_pb2.TaskResult:
        """Runs the command `build` makes; a ToolError saying what went wrong otherwise.

        An `element_action` (click, fill, ...) gets the shorter action_ms as its limit.
        A command that `makes_value` (a script's, a screenshot) raises DialogShowing
        when a dialog interrupted it, for `answers_dialogs` to say so.
        """
        browser = self.connections.browser(ctx)
        credentials = self.connections.credentials(ctx)
        with self.bounded():
            command = build()
            if not command.timeout_ms:
                limit = min(self.limits.action_ms, self.limits.command_ms)
                command.timeout_ms = limit if element_action else self.limits.command_ms
            try:
                limits = self.limits
                async with progress_reported(ctx, limits.progress_seconds, limits.call_seconds):
                    result = await browser.run(command, credentials, limits.call_seconds)
            except FarmCallFailed as failure:
                raise _with_ref_hint(failure, command, browser.snapshot_taken) from failure
        if makes_value and result.HasField("dialog"):
            raise DialogShowing(result)
        return result

    async def artifact(self, ctx: ToolContext, ref: tasks_pb2.ArtifactRef) -> Artifact | None:
        """The bytes of an artifact the tool's command made; None if the key may not read them.

        The public API asks only the scope `sessions` of an MCP key, and reading an
        artifact needs `artifacts.read` too: without it a tool still answers, with the link.
        """
        browser = self.connections.browser(ctx)
        with self.bounded(f"reading the artifact {ref.id} it made"):
            try:
                return await browser.farm.artifact(
                    ref.id, self.connections.credentials(ctx), self.limits.call_seconds
                )
            except FarmCallFailed as failure:
                if failure.code == grpc.StatusCode.PERMISSION_DENIED:
                    return None
                raise

    async def close(self, ctx: ToolContext) -> sessions_pb2.Session | None:
        """Closes the connection's farm session; the closed session, None if none was open."""
        browser = self.connections.browser(ctx)
        with self.bounded():
            return await browser.close(self.connections.credentials(ctx), self.limits.call_seconds)

    def link(self, ctx: ToolContext) -> ArtifactLink:
        """The artifact link maker of the connection's farm."""
        return self.connections.browser(ctx).farm.artifact_link

    @contextmanager
    def bounded(self, step: str = "") -> Iterator[None]:
        """The call within its time limit, its failures as ToolErrors (after `step`, if given).

        The SDK names the tool before the message: "Error executing tool click: ...".
        """
        started = time.monotonic()
        prefix = f"{step}: " if step else ""
        try:
            with anyio.fail_after(self.limits.call_seconds):
                yield
        except TimeoutError as error:
            raise ToolError(
                f"{prefix}did not finish within the tool time limit of "
                f"{self.limits.call_seconds:g} s ({time.monotonic() - started:.0f} s)"
            ) from error
        except FarmCallFailed as failure:
            raise ToolError(f"{prefix}{failure.what_happened}: {failure}") from failure
        except (SessionEnded, StillOpening, StillBusy, ArgumentError) as error:
            raise ToolError(f"{prefix}{error}") from error


# How the farm says that no element matched (SELECTOR_NOT_FOUND also names an element
# of the wrong kind, or a select without the option).
_NOT_FOUND_SIGNS = ("no element matches", "no matching element appeared")


def _with_ref_hint(
    failure: FarmCallFailed, command: sessions_pb2.SessionCommand, snapshot_taken: bool
) -> FarmCallFailed:
    """`failure`, saying where references come from when one of the command's was not found.

    Not when the reference was found but its element would not do (a fill of a
    combobox: "Element is not an <input>..."): a new snapshot would not help.
    """
    refs = snapshot_refs(command)
    if not refs or not any(sign in failure.details for sign in _NOT_FOUND_SIGNS):
        return failure
    if snapshot_taken:
        hint = "references come from the latest snapshot: take a new one after the page changes"
    else:
        hint = (
            f"{refs[0]} is a reference from a snapshot, and none has been taken of this "
            "browser yet: call snapshot first (references come from the latest snapshot), "
            "or give a CSS selector"
        )
    return FarmCallFailed(failure.code, f"{failure.details}; {hint}")
