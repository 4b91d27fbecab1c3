"""Following List page tokens: all pages, or up to a limit with the token to go on from."""

from collections.abc import Callable

import pytest

from farm.audit.v1 import audit_pb2
from farm_cli.console import CliError
from farm_cli.pages import every_page

Call = Callable[[audit_pb2.ListAuditRecordsRequest], audit_pb2.ListAuditRecordsResponse]


def pages_of(ids: list[str]) -> tuple[list[int], Call]:
    """A ListAuditRecords stand-in over `ids`: the page sizes asked for, and the call."""
    asked: list[int] = []

    def call(request: audit_pb2.ListAuditRecordsRequest) -> audit_pb2.ListAuditRecordsResponse:
        start = int(request.page_token or 0)
        size = request.page_size or 2
        asked.append(request.page_size)
        end = min(start + size, len(ids))
        return audit_pb2.ListAuditRecordsResponse(
            audit_records=[audit_pb2.AuditRecord(id=i) for i in ids[start:end]],
            next_page_token=str(end) if end < len(ids) else "",
        )

    return asked, call


def test_every_page_gathers_all_items() -> None:
    _, call = pages_of(list("abcde"))
    listed = every_page(call, audit_pb2.ListAuditRecordsRequest(), "audit_records")
    assert [r.id for r in listed.audit_records] == list("abcde")
    assert listed.next_page_token == ""


def test_a_limit_asks_for_no_more_than_wanted_and_keeps_the_token() -> None:
    asked, call = pages_of(list("abcdefg"))
    listed = every_page(
        call,
        audit_pb2.ListAuditRecordsRequest(),
        "audit_records",
        limit=5,
        page_size=3,
    )
    assert [r.id for r in listed.audit_records] == list("abcde")
    assert asked == [3, 2]
    assert listed.next_page_token == "5"


def test_a_repeated_token_is_an_error() -> None:
    def call(request: audit_pb2.ListAuditRecordsRequest) -> audit_pb2.ListAuditRecordsResponse:
        return audit_pb2.ListAuditRecordsResponse(next_page_token="again")

    with pytest.raises(CliError, match="same page token twice"):
        every_page(call, audit_pb2.ListAuditRecordsRequest(), "audit_records")
