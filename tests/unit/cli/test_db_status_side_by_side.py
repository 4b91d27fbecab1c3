"""`farm db status` asks the three services side by side, and lists them in order."""

import json
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from farm_cli.commands import db
from farm_cli.main import main
from farm_core import schema


class SideBySide:
    """Stands in for schema.run_action: each service's answer waits until all three asked."""

    def __init__(self) -> None:
        self.all_asked = threading.Barrier(len(db.SERVICES), timeout=10)

    def __call__(
        self, action: str, service: str, *_: object, **__: object
    ) -> Coroutine[Any, Any, dict[str, Any]]:
        # Sequential asks never get past the first: the barrier breaks after 10 s.
        self.all_asked.wait()
        return self.answer(service)

    @staticmethod
    async def answer(service: str) -> dict[str, Any]:
        return {
            "service": service,
            "database": "d",
            "revision": "1",
            "newest": "1",
            "state": "current",
        }


def test_status_asks_the_services_at_once_and_lists_them_in_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(schema, "run_action", SideBySide())
    assert main(["db", "status", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [each["service"] for each in listed] == list(db.SERVICES)
