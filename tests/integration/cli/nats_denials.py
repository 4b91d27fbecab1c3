"""The permission errors nats-server sends a client, kept for the NATS users' tests."""

from tests.helpers import assert_eventually


class Denials:
    """The permission errors the server sent one connection."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def on_error(self, error: Exception) -> None:
        self.errors.append(str(error))

    async def wait_for(self, what: str) -> None:
        """Waits until the server has told the connection that `what` is not allowed."""
        await assert_eventually(
            # nats-py lower-cases the subject in its message.
            lambda: any(what.lower() in error.lower() for error in self.errors),
            message=lambda: f"no permission error for {what}; got {self.errors}",
        )
