"""The circuit breaker of one target origin (host and port) as a pure state machine.

closed → open after `failures_to_open` consecutive failures → half-open once the
cool-down has passed, letting one trial task through → closed when the trial
succeeds, open again when it fails. While the breaker is not closed only the
trial's outcome counts: a task let in before the breaker opened says nothing new.
A trial whose agent died lapses after its time, and the next task becomes the trial.
"""

import enum
import json
import uuid
from dataclasses import dataclass, replace

from farm_agent.errors import BREAKER_FAILURE_CODES, TaskFailure
from farm_core.task_errors import ErrorCode

TRIAL_RECHECK_SECONDS = 2.0
"""While a trial runs, how soon a waiting task looks again (at most)."""


class CircuitState(enum.IntEnum):
    """A breaker's state (kept by name in the farm-wide bucket)."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


class Outcome(enum.Enum):
    """What one task's browsing says about its host."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


_SAYS_NOTHING_OF_THE_HOST = frozenset(
    {ErrorCode.BROWSER_CRASHED, ErrorCode.INVALID_DEVICE, ErrorCode.INTERNAL, ErrorCode.BLOCKED_URL}
)


def outcome_of(failure: TaskFailure | None) -> Outcome:
    """The outcome for the breaker of a browse that ended with `failure` (None: it worked).

    Retryable navigation failures (network error, timeout, HTTP 5xx) count against the
    host; a crashed browser or a bad spec says nothing of it; any other end means the
    host answered.
    """
    if failure is None:
        return Outcome.SUCCESS
    if failure.code in BREAKER_FAILURE_CODES and failure.retryable:
        return Outcome.FAILURE
    if failure.code in _SAYS_NOTHING_OF_THE_HOST:
        return Outcome.NEUTRAL
    return Outcome.SUCCESS


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and for how long."""

    failures_to_open: int
    cooldown_seconds: float


@dataclass(frozen=True)
class Admission:
    """Whether a task may go to the host now; if not, when to ask again."""

    allowed: bool
    trial_id: str = ""
    retry_after_seconds: float = 0.0

    @property
    def is_trial(self) -> bool:
        """Whether the task is the half-open breaker's one trial."""
        return bool(self.trial_id)


@dataclass(frozen=True)
class Circuit:
    """One host's breaker; `now` is wall-clock seconds, as agents on many machines share it."""

    state: CircuitState = CircuitState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_id: str = ""
    trial_until: float = 0.0

    def admit(
        self, now: float, policy: BreakerPolicy, trial_seconds: float
    ) -> tuple["Circuit", Admission]:
        """The breaker after a task asks to go to the host, and the answer."""
        if self.state is CircuitState.CLOSED:
            return self, Admission(allowed=True)
        if self.state is CircuitState.OPEN:
            reopens_at = self.opened_at + policy.cooldown_seconds
            if now < reopens_at:
                return self, Admission(allowed=False, retry_after_seconds=reopens_at - now)
        elif now < self.trial_until:
            wait = min(self.trial_until - now, TRIAL_RECHECK_SECONDS)
            return self, Admission(allowed=False, retry_after_seconds=wait)
        trial_id = uuid.uuid4().hex
        half_open = replace(
            self, state=CircuitState.HALF_OPEN, trial_id=trial_id, trial_until=now + trial_seconds
        )
        return half_open, Admission(allowed=True, trial_id=trial_id)

    def record(
        self, outcome: Outcome, now: float, policy: BreakerPolicy, trial_id: str = ""
    ) -> "Circuit":
        """The breaker after a task admitted with `trial_id` ("" if none) ended with `outcome`."""
        if self.state is not CircuitState.CLOSED:
            is_the_trial = self.state is CircuitState.HALF_OPEN and trial_id == self.trial_id
            if not trial_id or not is_the_trial:
                return self
            if outcome is Outcome.NEUTRAL:
                # The trial proved nothing: let the next task try.
                return replace(self, trial_id="", trial_until=0.0)
            if outcome is Outcome.SUCCESS:
                return Circuit()
            return Circuit(CircuitState.OPEN, failures=self.failures + 1, opened_at=now)
        if outcome is Outcome.SUCCESS:
            return self if self.failures == 0 else Circuit()
        if outcome is Outcome.NEUTRAL:
            return self
        failures = self.failures + 1
        if failures >= policy.failures_to_open:
            return Circuit(CircuitState.OPEN, failures=failures, opened_at=now)
        return replace(self, failures=failures)

    def to_bytes(self) -> bytes:
        """The breaker as JSON, as kept in the farm-wide bucket (read by farm_core.breakers)."""
        return json.dumps(
            {
                "state": self.state.name.lower(),
                "failures": self.failures,
                "openedAt": self.opened_at,
                "trialId": self.trial_id,
                "trialUntil": self.trial_until,
            }
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Circuit":
        """Reads `to_bytes` output; ValueError if it is not a breaker."""
        try:
            fields = json.loads(data)
            return cls(
                state=CircuitState[str(fields["state"]).upper()],
                failures=int(fields["failures"]),
                opened_at=float(fields["openedAt"]),
                trial_id=str(fields.get("trialId", "")),
                trial_until=float(fields.get("trialUntil", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a circuit breaker record: {data[:80]!r}") from error
