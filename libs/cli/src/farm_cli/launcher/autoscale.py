"""When the one-box farm grows or shrinks its agents (`farm up --agents MIN..MAX`).

The decision is pure: `ScalingPolicy.decide()` takes what the launcher read (the
oldest queued task's wait, the machine's CPU, each agent's busy places) and says
start one agent, drain one, or do nothing. It grows one agent at a time, with a
cooldown, when a task has waited longer than the target or the CPU is above its
threshold while tasks wait; it drains one agent at a time, never below MIN, once
that agent has run nothing for the idle time and nothing waits. scaler.py reads the
signals and acts on the decision.
"""

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

AGENT_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")


@dataclass(frozen=True)
class AutoscaleSettings:
    """Between how many agents the farm scales, and on what."""

    min_agents: int
    max_agents: int
    # Grow when the oldest queued task has waited longer than this.
    target_wait_seconds: float = 10.0
    # ... or when the machine's CPU is above this (percent of all cores) while tasks wait.
    cpu_percent: float = 80.0
    # Drain an agent that has run nothing for this long.
    idle_seconds: float = 60.0
    # After starting an agent, wait this long before starting another.
    cooldown_seconds: float = 15.0
    # How often the signals are read.
    interval_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not 0 <= self.min_agents <= self.max_agents or self.max_agents < 1:
            raise ValueError(
                f"agents must be MIN..MAX with 0 <= MIN <= MAX and MAX >= 1, "
                f"got {self.min_agents}..{self.max_agents}"
            )
        if not 0 < self.cpu_percent <= 100:
            raise ValueError(f"the CPU threshold must be in (0, 100], got {self.cpu_percent}")
        for name in ("target_wait_seconds", "idle_seconds", "interval_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.cooldown_seconds < 0:
            raise ValueError(f"cooldown_seconds must not be negative, got {self.cooldown_seconds}")

    def describe(self) -> str:
        """One line for the banner: the range and the thresholds."""
        return (
            f"{self.min_agents}..{self.max_agents}, one more when a task waits over "
            f"{self.target_wait_seconds:g} s or CPU is over {self.cpu_percent:g}% with tasks "
            f"waiting; one drained after {self.idle_seconds:g} s idle"
        )


def parse_agents(text: str) -> tuple[int, int]:
    """`--agents`: "3" is (3, 3), a fixed count; "1..3" is (1, 3), scaled between them."""
    match = AGENT_RANGE.match(text)
    if match:
        return int(match[1]), int(match[2])
    if text.strip().isdigit():
        count = int(text)
        return count, count
    raise ValueError(f"--agents takes a count (2) or a range MIN..MAX (1..3), got {text!r}")


@dataclass(frozen=True)
class FleetSignals:
    """What the launcher read in one look."""

    # How long the oldest queued task has waited (0: none waits); None: unreadable.
    oldest_wait_seconds: float | None
    # The machine's CPU since the last look, percent of all cores; None: unknown.
    cpu_percent: float | None
    # Agents up and not draining: their busy places (running tasks, open sessions);
    # None where the agent's metrics could not be read.
    busy_places: Mapping[str, int | None] = field(default_factory=dict)
    # Agents started and not ready yet, or crashed and about to be restarted.
    starting: int = 0
    # Agents told to drain that have not exited yet.
    draining: int = 0


@dataclass(frozen=True)
class ScaleUp:
    """Start one more agent, for `reason` ("oldest task waited 4.2 s")."""

    reason: str


@dataclass(frozen=True)
class Drain:
    """Drain `agent` (finish its work, then exit), for `reason` ("idle 30 s")."""

    agent: str
    reason: str


Decision = ScaleUp | Drain | None


class ScalingPolicy:
    """Decides, look by look, whether to start an agent, drain one, or wait."""

    def __init__(
        self, settings: AutoscaleSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._idle_since: dict[str, float] = {}
        self._next_scale_up = clock()

    def decide(self, signals: FleetSignals) -> Decision:
        """The step to take now; assumes the caller takes it."""
        now = self._clock()
        self._note_idle(signals.busy_places, now)
        if signals.oldest_wait_seconds is None or signals.starting or signals.draining:
            # Blind, or a change is under way: one step at a time.
            return None
        serving = len(signals.busy_places)
        reason = self._scale_up_reason(signals.oldest_wait_seconds, signals.cpu_percent)
        if reason is not None:
            if serving >= self.settings.max_agents or now < self._next_scale_up:
                return None
            self._next_scale_up = now + self.settings.cooldown_seconds
            return ScaleUp(reason)
        if signals.oldest_wait_seconds > 0 or serving <= self.settings.min_agents:
            return None
        return self._drain_idle(now)

    def _scale_up_reason(self, oldest_wait: float, cpu: float | None) -> str | None:
        settings = self.settings
        if oldest_wait > settings.target_wait_seconds:
            return f"oldest task waited {oldest_wait:.1f} s"
        if oldest_wait > 0 and cpu is not None and cpu > settings.cpu_percent:
            return f"CPU at {cpu:.0f}% with tasks waiting ({oldest_wait:.1f} s)"
        return None

    def _note_idle(self, busy_places: Mapping[str, int | None], now: float) -> None:
        for name in list(self._idle_since):
            if busy_places.get(name) != 0:
                del self._idle_since[name]
        for name, busy in busy_places.items():
            if busy == 0:
                self._idle_since.setdefault(name, now)

    def _drain_idle(self, now: float) -> Drain | None:
        # Agents 1..MIN are never drained: they are the ones scraped without the
        # autoscaled label, so FarmAgentDown would fire for a planned drain.
        idle = [
            name
            for name, since in self._idle_since.items()
            if now - since >= self.settings.idle_seconds
            and agent_number(name) > self.settings.min_agents
        ]
        if not idle:
            return None
        agent = max(idle, key=agent_number)
        idle_for = now - self._idle_since.pop(agent)
        return Drain(agent, f"idle {idle_for:.0f} s")


def agent_number(name: str) -> int:
    """3 for "agent-3"; 0 for a name without a number."""
    tail = name.rpartition("-")[2]
    return int(tail) if tail.isdigit() else 0
