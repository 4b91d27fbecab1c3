"""The header that names a batch's items refused at the edge: compact, and read back whole."""

import pytest

from farm_core.item_refusals import MAX_HEADER_CHARS, decode, encode


def test_items_that_share_a_mistake_are_one_range_and_read_back_by_index() -> None:
    problems = {index: ("priorty", "unknown field") for index in range(1000)}
    problems[500] = ("ulr", "unknown field; did you mean 'url'?")

    value = encode(problems)

    assert value is not None and len(value) < 120
    assert decode(value) == problems


def test_too_many_distinct_mistakes_are_no_header() -> None:
    problems = {index: (f"note{index}", "unknown field") for index in range(1000)}

    assert encode(problems) is None
    assert len(encode(dict(list(problems.items())[:10])) or "") <= MAX_HEADER_CHARS


@pytest.mark.parametrize(
    "value",
    ["", "{", '{"a": 1}', '[["a", 1, [[0, 0]]]]', '[["a", "b", [[0]]]]', "[1]"],
    ids=["empty", "not-json", "object", "number-problem", "short-range", "not-a-group"],
)
def test_a_malformed_header_names_no_item(value: str) -> None:
    assert decode(value) == {}


def test_a_range_past_any_batch_names_only_items_a_batch_may_have() -> None:
    assert len(decode('[["a", "b", [[-5, 1000000000]]]]')) == 1000
