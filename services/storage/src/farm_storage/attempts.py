"""Which attempt of a task may still store artifacts: the latest one that has stored any.

A task's WorkItem is redelivered as is for every attempt, so its grant cannot tell
attempts apart. An agent cut off from the farm keeps its attempt running after the
task was redelivered elsewhere; if the retry succeeds and the cut-off agent then
uploads, its bytes must not replace (or join) what the retry stored. Each upload
names its attempt (UploadHeader.attempt and work_sequence), every artifact row keeps
it, and an upload of an attempt older than the newest the task's rows hold is
refused: a fencing token, checked again in the transaction that writes the row.
"""

from dataclasses import dataclass

from farm_core.errors import FailedPrecondition


@dataclass(frozen=True, order=True)
class AttemptFence:
    """An upload's attempt of its task, ordered: the later WorkItem message, then the attempt.

    A task queued again (RequeueDeadLetter) is a new message, later in the stream, whose
    attempts number from 1 again. (0, 0) is an upload that names no attempt (a session's,
    or an agent older than UploadHeader.attempt): it is not checked and fences nothing.
    """

    work_sequence: int = 0
    attempt: int = 0

    @property
    def checked(self) -> bool:
        """Whether the upload names an attempt, so that it is checked and fences out older ones."""
        return self.attempt > 0


UNCHECKED = AttemptFence()


class StaleAttempt(FailedPrecondition):
    """An upload of an attempt that a later attempt of its task has overtaken."""


def check_fence(task_id: str, upload: AttemptFence, newest: AttemptFence | None) -> None:
    """Raises StaleAttempt if `newest`, the task's newest stored attempt, is later than `upload`."""
    if not upload.checked or newest is None or newest <= upload:
        return
    raise StaleAttempt(
        f"header.attempt: attempt {upload.attempt} (work sequence {upload.work_sequence}) is "
        f"not task {task_id!r}'s running attempt: attempt {newest.attempt} (work sequence "
        f"{newest.work_sequence}) has stored artifacts since; nothing was stored"
    )
