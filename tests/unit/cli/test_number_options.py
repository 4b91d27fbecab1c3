"""Whole-number options of the `farm` commands: a usage error, not a crash, when a value
cannot fill its proto field."""

import pytest

from farm_cli.commands.ranges import MAX_PAGE_SIZE
from farm_cli.main import main
from farm_core.key_limits import MAX_TTL_SECONDS
from farm_core.paging import MAX_PAGE_SIZE as FARM_MAX_PAGE_SIZE


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["key", "rate", "key7", "--burst", "3000000000"],
            "argument --burst: must be from 0 to 100000, got 3000000000",
        ),
        (
            ["key", "rate", "key7", "--per-second", "-1"],
            "argument --per-second: must be from 0 to 100000, got -1",
        ),
        (
            ["key", "rotate", "key7", "--grace-seconds", "1e3"],
            "argument --grace-seconds: not a whole number: '1e3'",
        ),
        (
            ["key", "create", "k", "--scope", "admin", "--ttl-seconds", str(2**63)],
            f"argument --ttl-seconds: must be from 0 to {MAX_TTL_SECONDS}, got {2**63}",
        ),
        (
            ["tenant", "limits", "acme", "--max-artifact-bytes", str(10**20)],
            f"argument --max-artifact-bytes: must be from 0 to {2**63 - 1}, got {10**20}",
        ),
        # Above the farm's largest page: a usage error (exit 2), not the farm's refusal.
        *(
            (
                [*command, "list", "--page-size", size],
                f"argument --page-size: must be from 0 to 1000, got {size}",
            )
            for command in (["task"], ["artifact"], ["deadletter"], ["session"])
            for size in ("1001", "3000000000")
        ),
        (
            ["mcp", "--tool-timeout", "-1"],
            "argument --tool-timeout: must be more than 0, got '-1'",
        ),
        (
            ["mcp", "--action-timeout", "0"],
            "argument --action-timeout: must be more than 0, got '0'",
        ),
        (
            ["mcp", "--tool-timeout", "nan"],
            "argument --tool-timeout: must be more than 0, got 'nan'",
        ),
        (
            ["mcp", "--tool-timeout", "soon"],
            "argument --tool-timeout: not a number: 'soon'",
        ),
        (
            ["mcp", "--idle-timeout", "-5"],
            "argument --idle-timeout: must be from 0 to 2147483647, got -5",
        ),
        # Task options outside the range the scheduler checks (farm_core.task_limits):
        # refused here, naming the option, not by the farm with exit 1.
        (
            ["task", "create", "http://127.0.0.1/", "--timeout-ms", "99999999999"],
            "argument --timeout-ms: must be 0 or from 1000 to 300000, got '99999999999'",
        ),
        (
            ["task", "run", "http://127.0.0.1/", "--timeout-ms", "-5"],
            "argument --timeout-ms: must be 0 or from 1000 to 300000, got '-5'",
        ),
        (
            ["task", "run", "http://127.0.0.1/", "--cache-ttl", str(10**20)],
            f"argument --cache-ttl: must be from 0 to 604800, got {10**20}",
        ),
        # --max-attempts reads ASCII digits only, as every number option (str.isdigit
        # took the Arabic-Indic three for 3 and crashed on a superscript two).
        *(
            (
                ["task", "create", "http://127.0.0.1/", "--max-attempts", attempts],
                f"argument --max-attempts: must be from 1 to 10, got {attempts!r}",
            )
            for attempts in ("0", "11", "\u0663", "\u00b2")
        ),
        (
            ["task", "create", "http://127.0.0.1/", "--viewport", "99999999999x800"],
            "argument --viewport: width and height must be from 1 to 10000, got '99999999999x800'",
        ),
        # Ranges checked before anything starts.
        (
            ["up", "--agents", "1..2", "--scale-wait", "-5"],
            "argument --scale-wait: must be more than 0, got '-5'",
        ),
        (
            ["up", "--agents", "1..2", "--scale-cpu", "500"],
            "argument --scale-cpu: must be more than 0 and at most 100, got '500'",
        ),
        (
            ["up", "--agents", "1..2", "--scale-idle", "0"],
            "argument --scale-idle: must be more than 0, got '0'",
        ),
        (["up", "--agents", "11"], "argument --agents: at most 10 agents, got 11"),
        (["up", "--agents", "1..11"], "argument --agents: at most 10 agents, got 11"),
        (
            ["up", "--agents", "3..1"],
            "argument --agents: agents must be MIN..MAX with 0 <= MIN <= MAX and MAX >= 1, "
            "got 3..1",
        ),
        (
            ["up", "--agents", "x"],
            "argument --agents: --agents takes a count (2) or a range MIN..MAX (1..3), got 'x'",
        ),
        (
            ["credential", "agent", "agent-1", "--days", "nan"],
            "argument --days: must be more than 0, got 'nan'",
        ),
        (
            ["credential", "agent", "agent-1", "--days", "1e9"],
            "argument --days: must be more than 0 and at most 3650 (10 years), got '1e9'",
        ),
        (
            ["credential", "agent", "agent-1", "--days", "-1"],
            "argument --days: must be more than 0, got '-1'",
        ),
    ],
)
def test_a_number_that_does_not_fit_is_a_usage_error_naming_the_option(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(f": error: {error}\n")


def test_the_cli_s_largest_page_is_the_farm_s() -> None:
    assert MAX_PAGE_SIZE == FARM_MAX_PAGE_SIZE


def test_nats_config_makes_at_most_a_thousand_agent_users(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Each user was one pass over the whole text: 100,000 ran for more than ten minutes.
    with pytest.raises(SystemExit) as exited:
        main(["nats-config", "--agents", "1001"])

    assert exited.value.code == 2
    assert capsys.readouterr().err.endswith(
        ": error: argument --agents: must be from 0 to 1000, got 1001\n"
    )
