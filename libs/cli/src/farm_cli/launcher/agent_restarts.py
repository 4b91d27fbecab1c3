"""`farm agent restart`'s requests to a running launcher, and its answers, as files.

The command writes FARM_HOME/run/restarts/<id>.request, naming one agent. The
launcher's supervising loop takes it (`AgentRestarts.look`), drains the agent and
starts it again (Supervisor.drain_and_restart) and, once the agent is ready, or if
it cannot be restarted, writes <id>.answer (JSON: agent, restarted, message); the
command waits for that file. Files, not a socket: `farm down` finds the launcher
the same way, by FARM_HOME alone.
"""

import json
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from farm_cli.launcher.supervisor import Phase, Supervisor

RESTARTS_DIR = "restarts"
REQUEST_SUFFIX = ".request"
ANSWER_SUFFIX = ".answer"
AGENT_PREFIX = "agent-"


@dataclass(frozen=True)
class Answer:
    """The launcher's answer to one restart request."""

    agent: str
    restarted: bool
    message: str


def write_atomically(path: Path, text: str) -> None:
    """Writes `path` whole or not at all: a reader never sees half of it."""
    part = path.with_name(f".{path.name}.part")
    part.write_text(text)
    part.replace(path)


def request_restart(run_dir: Path, agent: str) -> Path:
    """Asks the launcher of `run_dir` to restart `agent`; the path its answer will have."""
    folder = run_dir / RESTARTS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    request_id = secrets.token_hex(8)
    write_atomically(folder / f"{request_id}{REQUEST_SUFFIX}", agent)
    return folder / f"{request_id}{ANSWER_SUFFIX}"


def read_answer(path: Path) -> Answer | None:
    """The answer at `path` (removed once read), or None while there is none."""
    try:
        fields = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    return Answer(fields["agent"], fields["restarted"], fields["message"])


@dataclass
class _Pending:
    agent: str
    answer: Path
    restarts_before: int


class AgentRestarts:
    """The launcher's side: takes requests, restarts the agents, answers once each is up.

    `processes` gives the names of the processes the launcher started.
    """

    def __init__(
        self,
        run_dir: Path,
        supervisor: Supervisor,
        processes: Callable[[], Collection[str]],
        report: Callable[[str], None],
    ) -> None:
        self._folder = run_dir / RESTARTS_DIR
        self._supervisor = supervisor
        self._agents = processes  # the launched processes' names; the agents' are agent-N
        self._report = report
        self._pending: list[_Pending] = []
        # Files already there are an earlier farm's: its requests are not ours to act on
        # (restarting agents at start), nor its unread answers ours to keep. (Compared by
        # age instead, a request made at once could look older: file times are coarser.)
        self._clear_earlier()

    def look(self) -> None:
        """Takes new requests, then answers those whose agent is up again."""
        if self._folder.is_dir():
            for request in sorted(self._folder.glob(f"*{REQUEST_SUFFIX}")):
                self._take(request)
        for pending in list(self._pending):
            phase = self._supervisor.phase(pending.agent)
            if phase is Phase.UP and self._supervisor.restarts(pending.agent) > (
                pending.restarts_before
            ):
                self._pending.remove(pending)
                self._answer(pending.answer, Answer(pending.agent, True, "started again, ready"))

    def _clear_earlier(self) -> None:
        if self._folder.is_dir():
            for path in self._folder.iterdir():
                path.unlink(missing_ok=True)

    def _take(self, request: Path) -> None:
        agent = request.read_text().strip()
        request.unlink()
        answer = request.with_name(request.name.removesuffix(REQUEST_SUFFIX) + ANSWER_SUFFIX)
        launched = sorted(name for name in self._agents() if name.startswith(AGENT_PREFIX))
        if agent not in launched:
            known = ", ".join(launched) or "none"
            message = f"this farm has started no agent called {agent!r} (it has: {known})"
            self._answer(answer, Answer(agent, False, message))
            return
        restarts_before = self._supervisor.restarts(agent)
        try:
            self._supervisor.drain_and_restart(agent)
        except RuntimeError as refused:
            self._answer(answer, Answer(agent, False, str(refused)))
            return
        self._report(f"{agent}: restart asked by `farm agent restart`; draining it")
        self._pending.append(_Pending(agent, answer, restarts_before))

    def _answer(self, path: Path, answer: Answer) -> None:
        fields = {"agent": answer.agent, "restarted": answer.restarted, "message": answer.message}
        write_atomically(path, json.dumps(fields))
