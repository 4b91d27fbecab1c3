"""A batch's items checked: repeated specs checked once, each item's outcome kept by index."""

from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.batches import check_items, item_error
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import validate


def test_repeated_specs_are_checked_once_and_share_the_checked_spec() -> None:
    first, second = task_spec(url="https://a.example/"), task_spec(url="https://b.example/")
    seen: list[tasks_pb2.TaskSpec] = []

    def check(spec: tasks_pb2.TaskSpec) -> tasks_pb2.TaskSpec:
        seen.append(spec)
        return validate(spec)

    checked, refused = check_items([first, second, first, first, second], check)

    assert len(seen) == 2
    assert refused == {}
    assert list(checked) == [0, 1, 2, 3, 4]
    assert checked[0] is checked[2] is checked[3]
    assert checked[1] is checked[4]
    assert checked[0].url == "https://a.example/" and checked[1].url == "https://b.example/"
    # The checked spec has its defaults filled in, as a lone check gives it.
    assert checked[0] == validate(first)


def test_a_repeated_invalid_spec_is_refused_at_every_index() -> None:
    bad = task_spec(url="ftp://example.com/")
    checked, refused = check_items([bad, task_spec(), bad], validate)

    assert list(checked) == [1]
    assert list(refused) == [0, 2]
    for error in refused.values():
        assert isinstance(error, InvalidArgument) and error.field == "url"


def test_an_item_with_no_action_or_two_is_named_as_the_item_the_user_sent() -> None:
    """A batch's item is the TaskSpec itself: `requests[1]`, never `requests[1].spec`."""
    specs = [task_spec(), task_spec(screenshot=None), task_spec(content={})]
    _, refused = check_items(specs, validate)

    errors = [item_error(index, error) for index, error in sorted(refused.items())]

    assert [(error.index, error.field) for error in errors] == [
        (1, "requests[1]"),
        (2, "requests[2]"),
    ]
    assert errors[0].message.startswith("requests[1]: exactly one action of screenshot, pdf,")
    assert errors[1].message.endswith("must be set, got screenshot, content")


def test_an_items_bad_field_is_named_by_its_json_path_under_the_item() -> None:
    _, refused = check_items([task_spec(), task_spec(timeoutMs=5)], validate)

    error = item_error(1, refused[1])

    assert error.field == "requests[1].timeoutMs"
    assert error.message.startswith("requests[1].timeoutMs: must be 0 or between 1000 and")
