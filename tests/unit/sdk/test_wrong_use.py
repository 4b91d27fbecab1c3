"""A client used the wrong way is refused at once, saying what to do instead."""

import pytest

import browserfarm

FARM = "http://127.0.0.1:1"


def test_with_on_an_async_client_or_session_says_to_use_async_with() -> None:
    client = browserfarm.AsyncClient(FARM, "k")
    with (
        pytest.raises(TypeError, match=r"^AsyncClient is used with `async with`, not `with`"),
        client,
    ):
        pass
    with (
        pytest.raises(TypeError, match=r"^AsyncSession is used with `async with`, not `with`"),
        client.session(),
    ):
        pass


async def test_async_with_on_a_blocking_client_or_session_says_to_use_with() -> None:
    client = browserfarm.Client(FARM, "k")
    try:
        with pytest.raises(TypeError, match=r"^Client is used with `with`, not `async with`"):
            async with client:
                pass
        with pytest.raises(TypeError, match=r"^Session is used with `with`, not `async with`"):
            async with client.session():
                pass
    finally:
        client.close()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [({"concurrency": 0}, "concurrency: at least 1, not 0"), ({"timeout": 0}, "timeout: ")],
)
async def test_map_refuses_a_bad_argument_at_the_call_not_once_iterated(
    arguments: dict[str, float], named: str
) -> None:
    async with browserfarm.AsyncClient(FARM, "k") as client:
        with pytest.raises(browserfarm.InvalidArgument, match=named):
            client.map([], **arguments)  # type: ignore[arg-type]
    with (
        browserfarm.Client(FARM, "k") as blocking,
        pytest.raises(browserfarm.InvalidArgument, match=named),
    ):
        blocking.map([], **arguments)  # type: ignore[arg-type]
