"""`farm db status` asks the three services side by side, and lists them in order."""

import json
import subprocess
import threading
from collections.abc import Sequence

import pytest

from farm_cli.commands import db
from farm_cli.main import main


class SideBySide:
    """Stands in for subprocess.run: each service's answer waits until all three asked."""

    def __init__(self) -> None:
        self.all_asked = threading.Barrier(len(db.SERVICES), timeout=10)

    def __call__(self, argv: Sequence[str], **_: object) -> subprocess.CompletedProcess[str]:
        service = argv[-2].removeprefix("farm_").removesuffix(".schema")
        # Sequential asks never get past the first: the barrier breaks after 10 s.
        self.all_asked.wait()
        answer = {"service": service, "database": "d", "revision": "1", "newest": "1"}
        return subprocess.CompletedProcess(argv, 0, json.dumps({**answer, "state": "current"}))


def test_status_asks_the_services_at_once_and_lists_them_in_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(subprocess, "run", SideBySide())
    assert main(["db", "status", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [each["service"] for each in listed] == list(db.SERVICES)
