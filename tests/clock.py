"""A clock for tests: it stands still until the test moves it."""


class MovedClock:
    """A monotonic clock (seconds as a float) that moves only when the test sets `now`."""

    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
