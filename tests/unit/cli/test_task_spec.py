"""`farm task create|run` command lines turned into TaskSpecs."""

import io
import json
from pathlib import Path

import pytest

from farm.tasks.v1 import tasks_pb2
from farm_cli.commands.task_spec import task_spec_from_args
from farm_cli.console import CliError
from farm_cli.main import build_parser


def spec_for(*argv: str) -> tasks_pb2.TaskSpec:
    args = build_parser().parse_args(["task", "create", *argv])
    return task_spec_from_args(args)


def test_a_bare_url_takes_a_screenshot() -> None:
    spec = spec_for("https://example.com")
    assert spec.url == "https://example.com"
    assert spec.HasField("screenshot")
    assert not spec.HasField("pdf") and not spec.HasField("content")


def test_screenshot_flags_shape_the_screenshot() -> None:
    spec = spec_for("https://example.com", "--full-page", "--format", "jpeg", "--selector", "#main")
    assert spec.screenshot.full_page is True
    assert spec.screenshot.format == tasks_pb2.IMAGE_FORMAT_JPEG
    assert spec.screenshot.selector == "#main"


def test_pdf_and_content_actions() -> None:
    assert spec_for("https://example.com", "--pdf").HasField("pdf")
    content = spec_for("https://example.com", "--content", "text")
    assert content.content.format == tasks_pb2.CONTENT_FORMAT_TEXT
    assert not content.HasField("screenshot")


def test_common_options() -> None:
    spec = spec_for(
        "https://example.com",
        "--viewport",
        "1024x768",
        "--priority",
        "high",
        "--timeout-ms",
        "5000",
        "--label",
        "job=nightly",
        "--label",
        "team=web",
    )
    assert (spec.viewport.width, spec.viewport.height) == (1024, 768)
    assert spec.priority == tasks_pb2.PRIORITY_HIGH
    assert spec.timeout_ms == 5000
    assert dict(spec.labels) == {"job": "nightly", "team": "web"}
    assert not spec.HasField("cache_ttl_seconds")


def test_cache_ttl_is_sent_when_given_even_as_zero() -> None:
    assert spec_for("https://example.com", "--cache-ttl", "600").cache_ttl_seconds == 600
    fresh = spec_for("https://example.com", "--cache-ttl", "0")
    assert fresh.HasField("cache_ttl_seconds") and fresh.cache_ttl_seconds == 0


def test_two_actions_are_refused_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["task", "create", "https://x", "--pdf", "--content", "html"])


def test_screenshot_flags_with_another_action_are_refused() -> None:
    with pytest.raises(CliError, match="--full-page only goes with --screenshot, not with --pdf"):
        spec_for("https://example.com", "--pdf", "--full-page")


@pytest.mark.parametrize("viewport", ["1280", "1280x", "wide", "x800"])
def test_a_malformed_viewport_is_refused(viewport: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["task", "create", "https://x", "--viewport", viewport])


def test_a_label_needs_a_key_and_an_equals_sign() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["task", "create", "https://x", "--label", "nightly"])


def test_a_spec_file_overrides_the_flags(tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(
        json.dumps(
            {
                "url": "https://from-file.example",
                "pdf": {"landscape": True},
                "steps": [{"click": "#accept"}],
                "labels": {"job": "file"},
                "priority": "PRIORITY_LOW",
            }
        )
    )
    spec = spec_for(
        "https://from-flag.example", "--screenshot", "--priority", "high", "--label", "job=flag",
        "--label", "team=web", "--timeout-ms", "9000", "--spec", str(spec_file),
    )  # fmt: skip
    assert spec.url == "https://from-file.example"
    assert spec.HasField("pdf") and spec.pdf.landscape
    assert not spec.HasField("screenshot")
    assert spec.priority == tasks_pb2.PRIORITY_LOW
    assert dict(spec.labels) == {"job": "file", "team": "web"}
    assert spec.timeout_ms == 9000
    assert spec.steps[0].click == "#accept"


def test_a_spec_file_alone_needs_no_url_argument(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"url": "https://stdin.example"}'))
    spec = spec_for("--spec", "-")
    assert spec.url == "https://stdin.example"
    assert spec.HasField("screenshot")


def test_a_spec_file_with_an_unknown_field_names_it(tmp_path: Path) -> None:
    spec_file = tmp_path / "spec.json"
    spec_file.write_text('{"url": "https://x", "colour": "red"}')
    with pytest.raises(CliError, match="colour"):
        spec_for("--spec", str(spec_file))


def test_a_missing_spec_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CliError, match="No such file"):
        spec_for("--spec", str(tmp_path / "nope.json"))


def test_no_url_at_all_is_refused() -> None:
    with pytest.raises(CliError, match="URL is needed"):
        spec_for("--pdf")
