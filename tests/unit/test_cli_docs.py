"""docs/cli.md's table of commands matches the `farm` parser; the docs' commands parse."""

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm_cli.main import build_parser, leaf_parsers

ROOT = Path(__file__).resolve().parents[2]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text()
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], set[str]]]:
    """(words after `farm`, long options) of every command the parser runs."""
    subcommands = [
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    ]
    if not subcommands:
        yield (
            path,
            {
                option
                for action in parser._actions
                for option in action.option_strings
                if option.startswith("--") and option != "--help"
            },
        )
    for action in subcommands:
        for name, child in action.choices.items():
            yield from commands(child, (*path, name))


def documented_commands() -> dict[tuple[str, ...], set[str]]:
    """The rows of cli.md's "Every command" table: command words and the options they name."""
    section = CLI_DOC.split("## Every command", 1)[1].split("\n## ", 1)[0]
    table: dict[tuple[str, ...], set[str]] = {}
    for row in re.findall(r"^\| `farm .*$", section, re.M):
        command_cell, options_cell = re.split(r"(?<!\\)\|", row)[1:3]
        options = set(re.findall(r"`(--[a-z-]+)", options_cell))
        for usage in re.findall(r"`farm ([^`]*)`", command_cell):
            words = tuple(re.findall(r"^(?:[a-z][a-z-]*(?: |$))+", usage + " ")[0].split())
            table.setdefault(words, set()).update(options)
    return table


PARSED = dict(commands(build_parser()))


def test_the_table_lists_every_command_and_no_other() -> None:
    documented = documented_commands()
    # `farm credential revoke TARGET` is the credential command's positional ROLE "revoke".
    documented.pop(("credential", "revoke"), None)
    missing = sorted(" ".join(words) for words in PARSED.keys() - documented.keys())
    unknown = sorted(" ".join(words) for words in documented.keys() - PARSED.keys())
    assert not missing and not unknown, f"docs/cli.md lacks {missing}; has no such {unknown}"


@pytest.mark.parametrize("command", sorted(PARSED), ids=" ".join)
def test_the_table_names_each_option_of_a_command(command: tuple[str, ...]) -> None:
    documented = documented_commands().get(command, set())
    assert documented == PARSED[command], (
        f"docs/cli.md's row for `farm {' '.join(command)}`: "
        f"missing {sorted(PARSED[command] - documented)}, "
        f"not in the parser {sorted(documented - PARSED[command])}"
    )


def command_lines(text: str) -> Iterator[str]:
    """The `farm ...` command lines of the Markdown's shell blocks, without redirections."""
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in re.split(r"\||&&|;|\$\(|\)", line.split(" #")[0]):
                found = re.match(r"\s*(?:[A-Z_]+=\S+\s+)*(?:\.venv/bin/)?farm\s(.*)", part)
                if found:
                    yield re.split(r"\s[<>]", found.group(1))[0].strip()


def example_commands() -> Iterator[tuple[str, str]]:
    """(doc, command line) of every `farm` command in the docs' shell blocks."""
    for path in DOCS:
        for line in command_lines(path.read_text()):
            yield path.name, line


@pytest.mark.parametrize(("doc", "line"), sorted(set(example_commands())))
def test_each_farm_command_in_the_docs_parses(doc: str, line: str) -> None:
    # A synopsis's optional parts, `[--region eu]`, are checked as if given; an elided
    # value (`art_…`) stands for any; a repetition (`… \\`) is left out.
    words = [word for word in shlex.split(re.sub(r"[\[\]]", " ", line)) if word not in ("…", "...")]
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            build_parser().parse_args(words)
    except SystemExit as refused:
        assert not refused.code, (
            f"{doc}: `farm {line}`: {errors.getvalue().strip().splitlines()[-1]}"
        )


def test_every_option_of_every_command_says_what_it_is_for() -> None:
    # docs/cli.md: "`farm COMMAND --help` explains each option".
    unexplained = [
        f"{parser.prog} {action.option_strings[-1]}"
        for parser in leaf_parsers(build_parser())
        for action in parser._actions
        if action.option_strings and not action.help
    ]
    assert unexplained == []


def test_farm_help_says_where_the_commands_find_the_farm_as_the_docs_do() -> None:
    # Not "FARM_URL (default 127.0.0.1:8080)": without FARM_URL the CLI calls the farm
    # under FARM_HOME wherever it listens (docs/cli.md's first paragraph).
    description = " ".join((build_parser().description or "").split())
    assert "FARM_HOME" in description and "FARM_HOME" in CLI_DOC
    assert "default 127.0.0.1:8080" not in description
