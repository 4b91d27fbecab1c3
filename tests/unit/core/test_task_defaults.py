"""The TaskSpec defaults both services share are the ones docs/api.md promises."""

import re
from pathlib import Path

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_core import task_defaults

ROOT = Path(__file__).resolve().parents[3]
API_DOC = re.sub(r"\s+", " ", (ROOT / "docs" / "api.md").read_text())
WAIT_UNTIL_WORDS = {tasks_pb2.WAIT_UNTIL_LOAD: "load"}
PRIORITY_WORDS = {tasks_pb2.PRIORITY_NORMAL: "normal"}

DOCUMENTED = {
    "DEFAULT_VIEWPORT": "px each; default {0.width}\N{MULTIPLICATION SIGN}{0.height})",
    "DEFAULT_TIMEOUT_MS": "`timeoutMs` (1000\N{EN DASH}300000; default {0};",
    "DEFAULT_MAX_ATTEMPTS": "`maxAttempts` (1\N{EN DASH}10; default {0})",
    "DEFAULT_JPEG_QUALITY": "`quality` (JPEG only, 1\N{EN DASH}100, default {0})",
    "DEFAULT_PAPER_FORMAT": "`paperFormat` (`{0}`;",
    "DEFAULT_PERFORMANCE_BUDGET": "`ttfbMs` {0.ttfb_ms}, `fcpMs` {0.fcp_ms}, `lcpMs` "
    "{0.lcp_ms}, `cls` {0.cls}, `loadMs` {0.load_ms})",
}


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_the_api_doc_states_each_default(name: str) -> None:
    phrase = DOCUMENTED[name].format(getattr(task_defaults, name))
    assert phrase in API_DOC


def test_the_api_doc_states_the_default_wait_and_priority() -> None:
    wait_until = WAIT_UNTIL_WORDS[task_defaults.DEFAULT_WAIT_UNTIL]
    priority = PRIORITY_WORDS[task_defaults.DEFAULT_PRIORITY]
    assert f"`waitUntil` ({wait_until} \N{EM DASH} the default \N{EM DASH}," in API_DOC
    assert f"{priority} \N{EM DASH} the default \N{EM DASH}" in API_DOC


def test_the_api_doc_states_the_default_video_format() -> None:
    name = tasks_pb2.VideoFormat.Name(task_defaults.DEFAULT_VIDEO_FORMAT)
    assert f"`screencast` (`format`: `{name}` \N{EM DASH} the default \N{EM DASH}," in API_DOC


def test_the_api_doc_states_the_default_audit_kinds_in_order() -> None:
    names = [tasks_pb2.AuditKind.Name(kind) for kind in task_defaults.DEFAULT_AUDIT_KINDS]
    listed = ", ".join(f"`{name}`" for name in names)
    assert f"`kinds` (none: all four, {listed};" in API_DOC


def test_every_default_is_documented() -> None:
    names = {name for name in vars(task_defaults) if name.startswith("DEFAULT_")}
    assert names == {
        *DOCUMENTED,
        "DEFAULT_WAIT_UNTIL",
        "DEFAULT_PRIORITY",
        "DEFAULT_VIDEO_FORMAT",
        "DEFAULT_AUDIT_KINDS",
    }
