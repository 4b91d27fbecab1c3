"""What a session command is told while its page shows a dialog."""

from types import SimpleNamespace
from typing import Any, cast

import pytest

from farm_agent.errors import TaskFailure
from farm_agent.sessions.dialogs import SessionDialogs
from farm_core.task_errors import ErrorCode


class QuietContext:
    """A browser context that only takes the dialog listener."""

    def on(self, event: str, listener: Any) -> None:
        pass


@pytest.mark.parametrize(
    ("kind", "said"),
    [("alert", "an alert dialog"), ("confirm", "a confirm dialog"), ("prompt", "a prompt dialog")],
)
async def test_a_waiting_dialog_is_named_with_its_article(kind: str, said: str) -> None:
    dialogs = SessionDialogs(cast(Any, QuietContext()), hold_seconds=60)
    dialogs.pending = cast(Any, SimpleNamespace(type=kind, message="Sure?"))
    with pytest.raises(TaskFailure) as refused:
        dialogs.check_none()
    assert refused.value.code is ErrorCode.DIALOG_SHOWING
    assert refused.value.message.startswith(f"the page shows {said} ('Sure?'); answer it first")
