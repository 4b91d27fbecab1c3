"""The error codes both services write are exactly the ones docs/api.md lists."""

import re
from pathlib import Path

from farm_core.task_errors import ErrorCode

ROOT = Path(__file__).resolve().parents[3]


def documented_codes() -> list[str]:
    """The codes in the first column of docs/api.md's table of `error.code` values."""
    text = (ROOT / "docs" / "api.md").read_text()
    table = text.split("A failed task's `error.code` is", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return [code for row in rows for code in re.findall(r"`([A-Z_]+)`", row.split(" | ")[0])]


def test_the_api_doc_lists_every_code_once_and_no_other() -> None:
    codes = documented_codes()
    assert sorted(codes) == sorted(ErrorCode)
    assert len(codes) == len(set(codes))


def test_each_code_is_its_own_name() -> None:
    # The name is what TaskError.code carries and what clients match on.
    assert all(code.value == code.name for code in ErrorCode)
