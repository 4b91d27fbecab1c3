"""Mixins that answer a `with` of the wrong kind with a TypeError that names the right one.

Python's own ("does not support the context manager protocol") does not say that the
object is used the other way.
"""

from typing import NoReturn


class AsyncWithOnly:
    """An object used by `async with`: a plain `with` raises a TypeError saying so."""

    def __enter__(self) -> NoReturn:
        name = type(self).__name__
        raise TypeError(
            f"{name} is used with `async with`, not `with` (or, from blocking code, use "
            "browserfarm.Client, which `with` opens)"
        )

    def __exit__(self, *exc_info: object) -> None:
        """Never reached: __enter__ raises."""


class WithOnly:
    """An object used by `with`: an `async with` raises a TypeError saying so."""

    async def __aenter__(self) -> NoReturn:
        name = type(self).__name__
        raise TypeError(
            f"{name} is used with `with`, not `async with` (or, from asyncio code, use "
            "browserfarm.AsyncClient, which `async with` opens)"
        )

    async def __aexit__(self, *exc_info: object) -> None:
        """Never reached: __aenter__ raises."""
