"""What the fake services of the CLI and Envoy tests were sent, recorded in order."""

import threading
from dataclasses import dataclass, field
from typing import Any

import grpc


@dataclass
class Calls:
    """What the fake services were sent: (method, request, metadata) in order."""

    seen: list[tuple[str, Any, dict[str, str]]] = field(default_factory=list)
    # Set to let the checks of CHECK_HANGS_KEY answer.
    hung_check_released: threading.Event = field(default_factory=threading.Event)

    def record(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        self.seen.append((method, request, dict(context.invocation_metadata())))

    def count(self, method: str, task_id: str) -> int:
        """How many `method` calls were sent for the object `task_id` (their request's id)."""
        return sum(name == method and request.id == task_id for name, request, _ in self.seen)

    def last(self, method: str) -> tuple[Any, dict[str, str]]:
        for name, request, metadata in reversed(self.seen):
            if name == method:
                return request, metadata
        raise AssertionError(f"{method} was not called; calls: {[c[0] for c in self.seen]}")
