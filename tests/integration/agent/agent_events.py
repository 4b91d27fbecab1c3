"""The AgentEvents a test's intakes publish, collected as they come out of NATS."""

from nats.aio.msg import Msg

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from tests.helpers import assert_eventually

RUNNING = tasks_pb2.TASK_STATUS_RUNNING
FINAL = {
    tasks_pb2.TASK_STATUS_SUCCEEDED,
    tasks_pb2.TASK_STATUS_FAILED,
    tasks_pb2.TASK_STATUS_CANCELLED,
}


class Events:
    """Every AgentEvent published while the test runs, in arrival order."""

    def __init__(self) -> None:
        self.received: list[queue_pb2.AgentEvent] = []

    async def on_message(self, message: Msg) -> None:
        self.received.append(queue_pb2.AgentEvent.FromString(message.data))

    def of(self, task_id: str) -> list[queue_pb2.AgentEvent]:
        return [event for event in self.received if event.task_id == task_id]

    def statuses(self, task_id: str) -> list[int]:
        return [event.status for event in self.of(task_id)]

    def started(self) -> list[str]:
        return [event.task_id for event in self.received if event.status == RUNNING]

    async def final(self, task_id: str, within: float = 20) -> queue_pb2.AgentEvent:
        await assert_eventually(
            lambda: any(status in FINAL for status in self.statuses(task_id)),
            within=within,
            message=f"task {task_id} did not end",
        )
        return next(event for event in self.of(task_id) if event.status in FINAL)
