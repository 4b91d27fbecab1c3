"""GuardedPorts: the DevTools ports agents sharing a host refuse their pages."""

from pathlib import Path

from farm_agent.egress.guarded_ports import GuardedPorts


def test_a_port_one_agent_guards_is_guarded_for_every_agent_sharing_the_folder(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "guarded-ports"
    first, second = GuardedPorts(shared, "agent-1"), GuardedPorts(shared, "agent-2")

    first.guard(41234)

    assert 41234 in first and 41234 in second
    assert first.own == {41234} and second.own == frozenset()
    first.release(41234)
    assert 41234 not in first and 41234 not in second


def test_without_a_folder_an_agent_guards_only_its_own_ports() -> None:
    first, second = GuardedPorts(), GuardedPorts()

    first.guard(41234)

    assert 41234 in first and 41234 not in second


def test_an_agent_starting_again_forgets_the_ports_its_killed_run_left(tmp_path: Path) -> None:
    shared = tmp_path / "guarded-ports"
    GuardedPorts(shared, "agent-1").guard(41234)
    GuardedPorts(shared, "agent-2").guard(41235)

    again = GuardedPorts(shared, "agent-1")

    assert 41234 not in again
    assert 41235 in again
