"""`farm task create|run`'s text options (URL, --region, --label, --idempotency-key,
--selector, --mask, --profile, --compare): the spec each builds, and a usage error
(exit 2) naming the option, in the scheduler's words, for each value it would refuse."""

import pytest

from farm_cli.main import build_parser
from farm_core.idempotency import MAX_IDEMPOTENCY_KEY_CHARS
from farm_core.task_text import (
    MAX_LABEL_KEY_CHARS,
    MAX_LABEL_VALUE_CHARS,
    MAX_LABELS,
    MAX_REGION_CHARS,
    MAX_SELECTOR_CHARS,
    MAX_URL_CHARS,
)
from tests.unit.cli.task_options import URL, refusal, spec_for


def test_good_text_options_build_the_spec() -> None:
    spec = spec_for(
        "--region",
        "eu-west-1",
        "--label",
        "team.web_1=a=b",
        "--idempotency-key",
        "k" * MAX_IDEMPOTENCY_KEY_CHARS,
        "--selector",
        "#main",
        "--compare",
        "Home_page-1.v2",
        "--mask",
        ".ad",
        "--profile",
        "logged-in",
        "--callback-url",
        "https://[::1]:8443/done",
    )
    assert spec.url == URL
    assert spec.region == "eu-west-1"
    assert dict(spec.labels) == {"team.web_1": "a=b"}
    assert spec.idempotency_key == "k" * MAX_IDEMPOTENCY_KEY_CHARS
    assert spec.screenshot.selector == "#main"
    assert spec.screenshot.compare.baseline == "Home_page-1.v2"
    assert list(spec.screenshot.compare.mask) == [".ad"]
    assert spec.profile == "logged-in"
    assert spec.callback_url == "https://[::1]:8443/done"


def test_the_most_labels_the_farm_takes_build_the_spec() -> None:
    pairs = [f"k{index}=v" for index in range(MAX_LABELS)]
    spec = spec_for(*(arg for pair in pairs for arg in ("--label", pair)))
    assert len(spec.labels) == MAX_LABELS


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--region", "EU"], "argument --region: must be empty or 1 to 32 characters"),
        (["--region=-eu"], "argument --region: must be empty or 1 to 32 characters"),
        (["--region", "e" * (MAX_REGION_CHARS + 1)], "argument --region: must be empty"),
        (["--label", "Team=x"], "argument --label: label key 'Team' must be 1 to 63"),
        (["--label", "k" * (MAX_LABEL_KEY_CHARS + 1) + "=x"], "argument --label: label key"),
        (
            ["--label", "k=" + "v" * (MAX_LABEL_VALUE_CHARS + 1)],
            "argument --label: the value of 'k' must be at most 256 characters, got 257",
        ),
        (
            ["--idempotency-key", "k" * (MAX_IDEMPOTENCY_KEY_CHARS + 1)],
            "argument --idempotency-key: must be at most 128 characters, got 129",
        ),
        (["--selector", "   "], "argument --selector: must not be blank"),
        (
            ["--selector", "a" * (MAX_SELECTOR_CHARS + 1)],
            "argument --selector: must be at most 1000 characters, got 1001",
        ),
        (["--compare", "home", "--mask", " "], "argument --mask: must not be blank"),
        (["--compare", "home", "--mask", ""], "argument --mask: is required"),
        (["--compare", "my baseline"], "argument --compare: must be 1 to 64 characters"),
        (["--compare", "b" * 65], "argument --compare: must be 1 to 64 characters"),
        (["--profile", ".hidden"], "argument --profile: must be 1 to 64 characters"),
        (["--profile", ""], "argument --profile: must be 1 to 64 characters"),
        (["--callback-url", "ftp://127.0.0.1/"], "argument --callback-url: must be http or"),
        (["--callback-url", "127.0.0.1/done"], "argument --callback-url: must start with"),
    ],
)
def test_a_bad_text_option_is_a_usage_error_naming_it(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, line = refusal(["task", "create", URL, *argv], capsys)
    assert code == 2
    assert expected in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("example.com", "must start with http:// or https://, got 'example.com'"),
        ("file:///etc/passwd", "must be http or https, got 'file'"),
        ("http://a b/", "must not contain spaces or control characters"),
        ("http://127.1/", "host '127.1' ends in a number"),
        ("http://a..b/", "host 'a..b' has an empty label"),
        ("http://127.0.0.1:99999/", "is not a valid URL"),
        ("http://h/" + "a" * MAX_URL_CHARS, "must be at most 2048 characters"),
    ],
)
@pytest.mark.parametrize("command", ["create", "run"])
def test_a_bad_url_is_a_usage_error(
    command: str, url: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, line = refusal(["task", command, url], capsys)
    assert code == 2
    assert "argument url: " + expected in line


def test_more_labels_than_the_farm_takes_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pairs = [f"k{index}=v" for index in range(MAX_LABELS + 1)]
    argv = [arg for pair in pairs for arg in ("--label", pair)]
    code, line = refusal(["task", "create", URL, *argv], capsys)
    assert code == 2
    assert "argument --label: must be at most 32 labels, got 33" in line


def test_a_label_given_twice_with_two_values_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert spec_for("--label", "team=web", "--label", "team=web").labels == {"team": "web"}
    for command in (["task", "run", URL], ["session", "create"]):
        code, line = refusal([*command, "--label", "team=web", "--label", "team=api"], capsys)
        assert code == 2
        assert (
            "argument --label: 'team' is given twice, as 'web' and 'api': a label has one value"
        ) in line


def test_a_label_filter_checks_its_key_only(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["task", "list", "--label", "k=" + "v" * 300])
    assert args.labels == [("k", "v" * 300)]
    code, line = refusal(["task", "list", "--label", "Bad Key=x"], capsys)
    assert code == 2
    assert "argument --label: label key 'Bad Key'" in line


def test_session_create_checks_its_labels_as_a_task_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, line = refusal(["session", "create", "--label", "k=" + "v" * 257], capsys)
    assert code == 2
    assert "argument --label: the value of 'k' must be at most 256 characters" in line
    pairs = [f"k{index}=v" for index in range(MAX_LABELS + 1)]
    argv = [arg for pair in pairs for arg in ("--label", pair)]
    code, line = refusal(["session", "create", *argv], capsys)
    assert code == 2
    assert "argument --label: must be at most 32 labels, got 33" in line


def test_session_create_checks_its_region_and_profile_as_a_task_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for option in ("--region", "--profile"):
        code, line = refusal(["session", "create", option, "no good/name"], capsys)
        assert code == 2
        assert line.startswith(f"farm session create: error: argument {option}: "), line
