"""docs/architecture.md's table of RPCs holds: one row per public RPC, each naming its
proto's HTTP path, a handler that exists, test files that exist and a section that does."""

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.api import annotations_pb2  # type: ignore[import-untyped]
from google.protobuf.descriptor import MethodDescriptor

from farm_core.scopes import RPC_RULES
from tests.unit.markdown import heading_anchors
from tests.unit.rpcs import ALL_METHODS, full_name

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
ARCHITECTURE = (DOCS / "architecture.md").read_text()
SECTION = "## Each RPC: its handler, tests and docs"
NO_HTTP = "—"

ROW = re.compile(
    r"^\| `(?P<rpc>\w+\.\w+)` \| (?P<http>.+?) \| `(?P<module>[\w/]+\.py)` `(?P<handler>\w+\.\w+)` "
    r"\| (?P<tests>.+?) \| \[[^]]+\]\((?P<doc>[\w.]+\.md)#(?P<anchor>[\w-]+)\) \|$"
)


@dataclass(frozen=True)
class Row:
    """One RPC's row of the table."""

    rpc: str
    http: str
    module: str
    handler: str
    tests: tuple[str, ...]
    doc: str
    anchor: str


def table_rows() -> list[Row]:
    """The rows of the table under SECTION, up to the next section."""
    assert SECTION in ARCHITECTURE, f"docs/architecture.md has no section {SECTION!r}"
    body = ARCHITECTURE.split(SECTION, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in body.splitlines() if line.startswith("| `")]
    rows = []
    for line in lines:
        found = ROW.match(line)
        assert found, f"a row of the RPC table is not in the table's form: {line}"
        rows.append(
            Row(
                rpc=found["rpc"],
                http=found["http"],
                module=found["module"],
                handler=found["handler"],
                tests=tuple(re.findall(r"`([^`]+)`", found["tests"])),
                doc=found["doc"],
                anchor=found["anchor"],
            )
        )
    return rows


ROWS = table_rows()
METHODS = {f"{m.containing_service.name}.{m.name}": m for m in ALL_METHODS}


def test_the_table_has_one_row_per_public_rpc() -> None:
    public = set(RPC_RULES)
    named = [full_name(METHODS[row.rpc]) for row in ROWS if row.rpc in METHODS]

    assert [row.rpc for row in ROWS if row.rpc not in METHODS] == [], "rows naming no RPC"
    assert len(named) == len(set(named)), "an RPC has more than one row"
    assert sorted(public - set(named)) == [], "RPCs missing from docs/architecture.md"
    assert sorted(set(named) - public) == [], "rows of RPCs that RPC_RULES does not know"


def http_of(method: MethodDescriptor) -> str:
    """`VERB /path` of the method's google.api.http option, or NO_HTTP."""
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    verb = rule.WhichOneof("pattern")
    return f"`{verb.upper()} {getattr(rule, verb)}`" if verb else NO_HTTP


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.rpc)
def test_the_http_path_is_the_protos(row: Row) -> None:
    assert row.http.split(" (")[0] == http_of(METHODS[row.rpc])


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.rpc)
def test_the_handler_exists_and_serves_the_rpc(row: Row) -> None:
    method = METHODS[row.rpc]
    module = importlib.import_module(row.module.removesuffix(".py").replace("/", "."))
    class_name, method_name = row.handler.split(".")
    handler_class = getattr(module, class_name)
    stubs = importlib.import_module(
        method.containing_service.file.name.removesuffix(".proto").replace("/", ".") + "_pb2_grpc"
    )
    servicer = getattr(stubs, f"{method.containing_service.name}Servicer")

    assert method_name == method.name
    assert issubclass(handler_class, servicer)
    assert method_name in vars(handler_class), f"{row.handler} is not defined in {row.module}"


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.rpc)
def test_the_test_files_exist(row: Row) -> None:
    assert row.tests
    assert [path for path in row.tests if not (ROOT / path).is_file()] == []


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.rpc)
def test_the_doc_link_names_a_section(row: Row) -> None:
    assert row.anchor in heading_anchors((DOCS / row.doc).read_text())
