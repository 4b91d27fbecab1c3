"""What the `farm` command says when its command line is wrong or its reader goes away."""

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from farm_cli.main import build_parser, main


@pytest.mark.parametrize(
    ("argv", "usage", "error"),
    [
        (
            ["task", "run", "http://127.0.0.1/", "--fullpage"],
            "usage: farm task run ",
            "farm task run: error: unrecognized arguments: --fullpage (did you mean --full-page?)",
        ),
        (
            ["session", "run", "ses_1", "--wait_for", "#x"],
            "usage: farm session run ",
            "farm session run: error: unrecognized arguments: --wait_for #x "
            "(did you mean --wait-for?)",
        ),
        (
            ["key", "list", "--shiny"],
            "usage: farm key list ",
            "farm key list: error: unrecognized arguments: --shiny",
        ),
    ],
)
def test_an_unknown_option_shows_the_commands_own_usage_and_a_near_option(
    argv: list[str], usage: str, error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage)
    assert err.endswith(f"{error}\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["task", "list", "--status", "bogus", "--json"],
            "argument --status: invalid choice: 'bogus' (choose from 'queued', 'running', "
            "'succeeded', 'failed', 'cancelled')",
        ),
        (
            ["task", "run", "--json", "http://127.0.0.1/", "--fullpage"],
            "unrecognized arguments: --fullpage (did you mean --full-page?)",
        ),
        (["status", "--window", "0", "--json"], "argument --window: must be from 1 to 1440, got 0"),
    ],
)
def test_a_command_line_argparse_refuses_with_json_is_one_json_object(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Scripts read stderr as JSON with --json: argparse's refusals too, not its usage text.
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert json.loads(err) == {"error": {"code": "USAGE", "message": message}}
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["session", "run", "ses_1", "--pdf", "--format", "png"],
            "--format goes with --screenshot or --full-page",
        ),
        (
            ["session", "tabs", "ses_1", "select", "first"],
            "tabs select needs the page's index (0 or more), got 'first'",
        ),
        (["session", "tabs", "ses_1", "list", "2"], "tabs list takes no more arguments, got '2'"),
        (
            ["task", "run", "https://example.com/", "--pdf", "--full-page"],
            "--full-page only goes with --screenshot, not with --pdf",
        ),
        (
            ["task", "create", "https://example.com/", "--mask", "#ad"],
            "--mask only goes with --compare",
        ),
        (
            ["task", "run", "--pdf"],
            'a URL is needed: give it as the first argument or as "url" in --spec',
        ),
    ],
)
def test_options_that_do_not_go_together_are_a_usage_error_before_any_call(
    argv: list[str],
    error: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No farm listens here: the refusal comes before any call.
    monkeypatch.setenv("FARM_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("FARM_API_KEY", "bf_unused")
    assert main(argv) == 2
    assert capsys.readouterr().err == f"error: {error}\n"


def test_output_into_a_closed_pipe_ends_without_a_traceback() -> None:
    reader, writer = os.pipe()
    os.close(reader)  # as `farm ... | head` once head has exited
    try:
        finished = subprocess.run(
            [sys.executable, "-m", "farm_cli.main", "envoy-config"],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(writer)

    assert finished.stderr == ""
    assert finished.returncode == 1


@pytest.mark.parametrize(
    ("given", "selector", "value"),
    [
        ("#q=farm", "#q", "farm"),
        ("input[name=q]=farm", "input[name=q]", "farm"),
        ("input[value='a=b']=x=y", "input[value='a=b']", "x=y"),
        ('[data-k="]="]=v', '[data-k="]="]', "v"),
        ("#q=", "#q", ""),
    ],
)
def test_session_fill_splits_at_the_first_equals_sign_after_the_selector(
    given: str, selector: str, value: str
) -> None:
    args = build_parser().parse_args(["session", "run", "ses_1", "--fill", given])

    assert [(step.fill.selector, step.fill.value) for step in args.steps] == [(selector, value)]


@pytest.mark.parametrize("given", ["farm", "=farm", "input[name=q]"])
def test_session_fill_without_a_selector_and_value_is_a_usage_error(
    given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["session", "run", "ses_1", "--fill", given])

    assert exited.value.code == 2
    assert f"expected SELECTOR=VALUE, got {given!r}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["task", "run", "--pdf"], 'a URL is needed: give it as the first argument or as "url"'),
        (
            ["task", "create", "http://127.0.0.1/", "--mask", "#a"],
            "--mask only goes with --compare",
        ),
        (
            ["task", "run", "http://127.0.0.1/", "--pdf", "--full-page"],
            "--full-page only goes with --screenshot, not with --pdf",
        ),
        (
            [
                "task",
                "run",
                "http://127.0.0.1/",
                "--content",
                "text",
                "--full-page",
                "--format",
                "png",
            ],
            "--full-page, --format only go with --screenshot, not with --content",
        ),
        (["tenant", "limits", "acme"], "tenant limits: give at least one of --max-queued-tasks"),
        (["audit", "--limit", "0"], "--limit: must be at least 1"),
        (["audit", "--since", "yesterday"], "--since: not a time or an age like"),
        (
            ["audit", "--outcome", "CANCELED"],
            "--outcome: must be OK or a gRPC status code name, got 'CANCELED'",
        ),
    ],
)
def test_options_that_do_not_go_together_exit_2_before_any_call(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # No farm to call: the refusal must come before any call is tried.
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(f"error: {error}")


@pytest.mark.parametrize(
    "argv",
    [
        ["key", "create", "--scope", "tasks.read", "ci"],
        ["key", "create", "--scope", "tasks.read", "tasks.write", "ci", "--json"],
    ],
)
def test_a_key_name_after_scope_is_told_where_it_goes(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # --scope takes every word after it, the name too: say so, and call nothing.
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "a name is needed, before --scope: farm key create NAME --scope SCOPE ..." in err


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["key", "create", "ci", "--scope", "tasks.read", "--ttl-seconds", "315360001"],
            "argument --ttl-seconds: must be from 0 to 315360000, got 315360001",
        ),
        (
            ["key", "rotate", "key_1", "--grace-seconds", "2592001"],
            "argument --grace-seconds: must be from 0 to 2592000, got 2592001",
        ),
        (
            ["key", "rate", "key_1", "--per-second", "100001"],
            "argument --per-second: must be from 0 to 100000, got 100001",
        ),
    ],
)
def test_a_key_setting_auth_would_refuse_is_a_usage_error_naming_auths_bound(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same bounds as auth's (farm_core.key_limits), checked before anything is sent.
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f"{error}\n")


def test_key_creates_usage_puts_the_name_before_scope(capsys: pytest.CaptureFixture[str]) -> None:
    # argparse's own usage ended in "[--json] [name]": copied, the name went to --scope.
    with pytest.raises(SystemExit):
        main(["key", "create", "ci"])

    assert capsys.readouterr().err.startswith("usage: farm key create [-h] NAME --scope SCOPE")


@pytest.mark.parametrize(
    ("option", "error"),
    [
        ("--upstream=scheduler=10.0.0.5:71030", "port 71030 of '10.0.0.5:71030' is not in 1-65535"),
        ("--upstream=scheduler=http://10.0.0.5:7103", "expected HOST:PORT (no scheme, no path)"),
        ("--listen=0.0.0.0:0", "port 0 of '0.0.0.0:0' is not in 1-65535"),
        ("--otlp=http://jaeger:4317", "expected HOST:PORT (no scheme, no path)"),
    ],
)
def test_envoy_config_refuses_an_address_envoy_could_not_use(
    option: str, error: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["envoy-config", option, "-o", str(tmp_path / "envoy.yaml")])

    assert exited.value.code == 2
    assert error in capsys.readouterr().err
    assert not (tmp_path / "envoy.yaml").exists()


def test_farm_version_prints_the_commands_and_the_sdks_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])

    assert exit_info.value.code == 0
    printed = capsys.readouterr().out.strip()
    assert printed == f"farm {version('farm-cli')} (SDK browserfarm {version('browserfarm')})"
