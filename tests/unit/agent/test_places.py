"""Tasks and sessions share an agent's places; a waiting session goes before new tasks."""

import asyncio

from farm_agent.places import Places
from tests.helpers import assert_eventually


async def test_a_session_takes_a_free_place_and_gives_it_back() -> None:
    places = Places(2)
    assert await places.take_for_session(0.1)
    assert (places.sessions, places.free) == (1, 1)
    await places.give_back(session=True)
    assert places.free == 2


async def test_a_session_finds_no_place_while_tasks_hold_them_all() -> None:
    places = Places(1)
    assert places.try_take_for_task()
    assert not places.try_take_for_task()
    assert not await places.take_for_session(0.05)
    assert places.sessions == 0
    assert places.task_may_start() is False


async def test_a_waiting_session_gets_the_next_free_place_before_any_new_task() -> None:
    places = Places(1)
    assert places.try_take_for_task()
    session = asyncio.create_task(places.take_for_session(5))
    await assert_eventually(lambda: places.sessions_waiting == 1, within=1)
    waiting_task = asyncio.create_task(places.wait_for(places.task_may_start))
    await places.give_back(session=False)
    assert await session
    assert not places.try_take_for_task()
    assert not waiting_task.done()
    await places.give_back(session=True)
    await asyncio.wait_for(waiting_task, 1)
    assert places.try_take_for_task()
    assert (places.tasks, places.sessions) == (1, 0)
