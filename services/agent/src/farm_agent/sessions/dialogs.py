"""The dialogs of a session's pages: held for an answer, dismissed when none comes in time.

A task's dialogs are answered at once (page_guard.py); a session's `alert`,
`confirm` and `prompt` wait for the next command's `dialog` answer, or for an
attached CDP client's own `Page.handleJavaScriptDialog`, up to `hold_seconds`,
then are dismissed, so a forgotten dialog never blocks the page for good. One
dialog waits at a time: one opened meanwhile (another page's) is dismissed at
once. A `beforeunload` dialog is accepted at once, so the page may leave.
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from playwright.async_api import BrowserContext, Dialog
from playwright.async_api import Error as PlaywrightError

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_agent import metrics
from farm_agent.browser.page_guard import answer_dialog
from farm_agent.errors import TaskFailure
from farm_core.task_errors import ErrorCode

log = logging.getLogger(__name__)

CLIENT_ANSWER_SECONDS = 2.0
"""How long a client's answer to a dialog not reported yet stands for the next one reported."""


class SessionDialogs:
    """The dialog a session's default context shows, if any, and its clock."""

    def __init__(self, context: BrowserContext, hold_seconds: float) -> None:
        self._context = context
        self.hold_seconds = hold_seconds
        self.pending: Dialog | None = None
        # Set while a dialog waits: a running command stops at it.
        self.shown = asyncio.Event()
        self._expiry: asyncio.Task[None] | None = None
        self._chores: set[asyncio.Task[None]] = set()
        # When attached clients answered a dialog the agent had not seen yet.
        self._client_answers: deque[float] = deque(maxlen=8)
        context.on("dialog", self._on_dialog)

    def described(self) -> tasks_pb2.PageDialog:
        """The waiting dialog as a result reports it (empty if none waits)."""
        if self.pending is None:
            return tasks_pb2.PageDialog()
        return tasks_pb2.PageDialog(
            type=self.pending.type,
            message=self.pending.message,
            default_value=self.pending.default_value,
            timeout_seconds=round(self.hold_seconds),
        )

    def check_none(self) -> None:
        """Raises DIALOG_SHOWING while a dialog waits for its answer."""
        if self.pending is not None:
            kind = self.pending.type
            article = "an" if kind.startswith(tuple("aeiou")) else "a"
            raise TaskFailure(
                ErrorCode.DIALOG_SHOWING,
                f"the page shows {article} {kind} dialog ({self.pending.message!r}); "
                "answer it first with the command's `dialog` (MCP: handle_dialog)",
            )

    async def answer(self, answer: sessions_pb2.DialogAnswer) -> None:
        """Accepts (with a prompt's text) or dismisses the waiting dialog; NO_DIALOG if none."""
        dialog = self._take()
        if dialog is None:
            raise TaskFailure(ErrorCode.NO_DIALOG, "dialog: the page shows no dialog to answer")
        try:
            if answer.accept:
                await dialog.accept(answer.prompt_text or dialog.default_value)
            else:
                await dialog.dismiss()
        except PlaywrightError as error:
            # Answered by an attached client meanwhile, or its page went away.
            log.debug("a session's dialog could not be answered: %s", error.message)

    def answered_by_client(self) -> None:
        """An attached CDP client answered a dialog itself: none waits any more."""
        if self._take() is None:
            # The client may answer before the agent's own Playwright reports the dialog.
            self._client_answers.append(time.monotonic())

    async def stop(self) -> None:
        """Stops watching and dismisses a dialog that waits (the session closes).

        Dismissed, not left to the browser's close: while a dialog shows, the page
        answers no CDP command, so the screencast's stop before that close would wait
        for good.
        """
        self._context.remove_listener("dialog", self._on_dialog)
        dialog = self._take()
        for chore in self._chores:
            chore.cancel()
        if dialog is not None:
            with contextlib.suppress(PlaywrightError):
                await dialog.dismiss()

    def _take(self) -> Dialog | None:
        dialog, self.pending = self.pending, None
        self.shown.clear()
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        return dialog

    def _on_dialog(self, dialog: Dialog) -> None:
        metrics.page_events_total.labels(kind="dialog").inc()
        if self._answered_already():
            return
        if dialog.type == "beforeunload" or self.pending is not None:
            self._chore(answer_dialog(dialog))
            return
        log.debug("a session's %s dialog waits: %.80s", dialog.type, dialog.message)
        self.pending = dialog
        self.shown.set()
        self._expiry = asyncio.ensure_future(self._expire(dialog))

    def _answered_already(self) -> bool:
        """Whether an attached client answered this dialog before it was reported here."""
        recent = time.monotonic() - CLIENT_ANSWER_SECONDS
        while self._client_answers and self._client_answers[0] < recent:
            self._client_answers.popleft()
        if not self._client_answers:
            return False
        self._client_answers.popleft()
        return True

    async def _expire(self, dialog: Dialog) -> None:
        await asyncio.sleep(self.hold_seconds)
        if self.pending is dialog:
            log.info("a session's %s dialog was not answered: dismissed", dialog.type)
            self._expiry = None
            self._take()
            with contextlib.suppress(PlaywrightError):
                await dialog.dismiss()

    def _chore(self, work: Coroutine[Any, Any, None]) -> None:
        chore = asyncio.ensure_future(work)
        self._chores.add(chore)
        chore.add_done_callback(self._chores.discard)
