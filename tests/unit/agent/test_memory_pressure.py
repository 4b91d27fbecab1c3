"""The agent's memory limit: read from its setting or its cgroup, and checked as PSS."""

from pathlib import Path

import psutil
import pytest

from farm_agent.browser.memory import MemoryPressure, cgroup_limit_bytes, tree_proportional_bytes


@pytest.mark.parametrize(
    ("text", "limit"),
    [("1073741824\n", 1073741824), ("max\n", 0), ("9223372036854771712\n", 0)],
)
def test_a_cgroup_limit_is_read_and_no_limit_is_0(tmp_path: Path, text: str, limit: int) -> None:
    path = tmp_path / "memory.max"
    path.write_text(text)
    assert cgroup_limit_bytes((tmp_path / "absent", path)) == limit


def test_without_a_readable_cgroup_file_there_is_no_limit(tmp_path: Path) -> None:
    assert cgroup_limit_bytes((tmp_path / "absent",)) == 0


def test_pss_of_this_process_is_counted_and_at_most_its_resident_size_and_children() -> None:
    used = tree_proportional_bytes()
    assert (
        0
        < used
        <= sum(
            process.memory_info().rss
            for process in [psutil.Process(), *psutil.Process().children(recursive=True)]
        )
    )


async def test_pressure_starts_past_the_share_of_the_limit() -> None:
    used = tree_proportional_bytes()
    assert await MemoryPressure(used, trim_percent=50).pressed()
    assert not await MemoryPressure(used * 4, trim_percent=50).pressed()
    assert MemoryPressure(1000, trim_percent=80).threshold_bytes == 800


async def test_the_setting_wins_over_the_cgroup_and_no_limit_means_no_pressure() -> None:
    assert MemoryPressure(12345, trim_percent=80).limit_bytes == 12345
    unlimited = MemoryPressure(0, trim_percent=80)
    unlimited.limit_bytes = 0
    assert not await unlimited.pressed()
