"""The docs name every setting the code reads, and the README keeps its promises."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from farm_agent.settings import AgentSettings
from farm_auth.settings import AuthSettings
from farm_cli.launcher.ports import FarmPorts
from farm_console.settings import ConsoleSettings
from farm_core.scopes import RPC_RULES
from farm_core.settings import FarmSettings
from farm_mcp.settings import McpSettings
from farm_scheduler.settings import SchedulerSettings
from farm_storage.settings import StorageSettings
from tests.unit.markdown import heading_anchors

ROOT = Path(__file__).resolve().parents[2]
OPERATIONS = (ROOT / "docs" / "operations.md").read_text()
README = (ROOT / "README.md").read_text()
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def environment_names(settings: type[BaseSettings]) -> set[str]:
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        if isinstance(field.validation_alias, AliasChoices):
            names.update(str(choice) for choice in field.validation_alias.choices)
        else:
            names.add(f"{settings.model_config.get('env_prefix', '')}{name}".upper())
    return names


@pytest.mark.parametrize(
    "settings",
    [
        FarmSettings,
        AuthSettings,
        StorageSettings,
        SchedulerSettings,
        AgentSettings,
        McpSettings,
        ConsoleSettings,
    ],
)
def test_operations_doc_names_every_setting(settings: type[BaseSettings]) -> None:
    missing = sorted(name for name in environment_names(settings) if f"`{name}`" not in OPERATIONS)
    assert not missing, f"docs/operations.md does not mention {missing}"


def test_operations_doc_names_every_port_variable() -> None:
    names = {FarmPorts.variable(field) for field in FarmPorts.__dataclass_fields__}
    missing = sorted(name for name in names if f"`{name}`" not in OPERATIONS)
    assert not missing, f"docs/operations.md does not mention {missing}"


def ports_in_section(doc: str, heading: str) -> set[int]:
    """The port numbers (and ranges such as 17301-17304, dash or en dash) a doc's section names."""
    text = (ROOT / "docs" / doc).read_text().split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    ports: set[int] = set()
    for first, last in re.findall(r"\b(\d{4,5})(?:[\u2013-](\d{4,5}))?\b", text):
        ports.update(range(int(first), int(last or first) + 1))
    return ports


@pytest.mark.parametrize(
    ("doc", "heading"),
    [("operations.md", "### Ports"), ("architecture.md", "## Ports of the local farm")],
)
def test_the_port_tables_give_every_default_port(doc: str, heading: str) -> None:
    named = ports_in_section(doc, heading)
    defaults = FarmPorts()
    missing = {
        field: getattr(defaults, field)
        for field in FarmPorts.__dataclass_fields__
        if getattr(defaults, field) not in named
    }
    assert not missing, f"docs/{doc} ({heading}) does not give the default ports {missing}"


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands[:2] == ["make run", "make test"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_docs_link_only_to_files_and_sections_that_exist(doc: Path) -> None:
    broken = []
    for link in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
        if re.match(r"[a-z]+:", link):  # https:, mailto: — not this repository's
            continue
        path, _, anchor = link.partition("#")
        target = (doc.parent / path).resolve() if path else doc
        if not target.exists() or (anchor and anchor not in heading_anchors(target.read_text())):
            broken.append(link)
    assert not broken, f"{doc.name} links to files or sections that do not exist: {broken}"


# The repository's top folders, and the packages a doc may name a path from
# (`farm_scheduler/result_cache.py`).
TOP_FOLDERS = {path.name for path in ROOT.iterdir() if path.is_dir() and path.name[0] != "."}
PACKAGES = {
    path.name: path
    for path in (*ROOT.glob("libs/*/src/*"), *ROOT.glob("services/*/src/*"))
    if path.is_dir()
}
# Paths the docs name that are not the repository's, on purpose.
ELSEWHERE = {
    ("operations.md", "envoy/envoy.yaml"),  # a row of the FARM_HOME table
    ("performance.md", "bench/http1.py"),  # the history of a bench: the client it replaced
}


def named_paths(doc: Path) -> Iterator[str]:
    """The repository paths a doc names in code spans: `tests/...`, `farm_agent/...`, …."""
    for span in re.findall(r"`([^`\s]+)`", doc.read_text()):
        path = span.rstrip(":,")
        first = path.split("/")[0]
        named = "/" in path and (first in TOP_FOLDERS or first in PACKAGES)
        if named and not re.search(r"[*<>{}…]|\.\.\.", path):  # `…` or `*`: a pattern
            yield path


def exists(path: str) -> bool:
    """Whether a named path (a test's id, `file::test`, too) is in the repository."""
    file, _, test = path.partition("::")
    first = file.split("/")[0]
    found = ROOT / file if first in TOP_FOLDERS else PACKAGES[first].parent / file
    if not found.exists():
        return False
    return not test or re.search(rf"def {test}\b", found.read_text()) is not None


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_the_paths_the_docs_name_exist(doc: Path) -> None:
    named = set(named_paths(doc)) - {path for name, path in ELSEWHERE if name == doc.name}
    missing = sorted(path for path in named if not exists(path))
    assert not missing, f"{doc.name} names files or tests the repository lacks: {missing}"


def test_api_doc_names_every_rpc_the_audit_log_records() -> None:
    section = (ROOT / "docs" / "api.md").read_text().split("## Audit log", 1)[1]
    listed = section.split(" — and every refused call", 1)[0]
    mutating = {name.rsplit("/", 1)[1] for name, rule in RPC_RULES.items() if rule.mutating}
    assert mutating - set(re.findall(r"\b[A-Z][A-Za-z]+\b", listed)) == set()
