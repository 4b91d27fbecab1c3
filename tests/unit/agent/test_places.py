"""Tasks and sessions share an agent's places; a waiting session goes before new tasks."""

import asyncio

from farm_agent.sessions.places import Places
from tests.helpers import assert_eventually


async def test_a_session_takes_a_free_place_and_gives_it_back() -> None:
    places = Places(2)
    assert await places.take_for_session(0.1)
    assert (places.sessions, places.free) == (1, 1)
    await places.give_back(session=True)
    assert places.free == 2


async def test_a_session_finds_no_place_while_tasks_hold_them_all() -> None:
    places = Places(1)
    await places.take_for_task()
    assert not await places.take_for_session(0.05)
    assert places.sessions == 0
    assert places.task_may_start() is False


async def test_a_waiting_session_gets_the_next_free_place_before_any_new_task() -> None:
    places = Places(1)
    await places.take_for_task()
    session = asyncio.create_task(places.take_for_session(5))
    await assert_eventually(lambda: not places.task_may_start(), within=1)
    task = asyncio.create_task(places.take_for_task())
    await places.give_back(session=False)
    assert await session
    assert not task.done()
    await places.give_back(session=True)
    await asyncio.wait_for(task, 1)
    assert (places.tasks, places.sessions) == (1, 0)
