"""The test suite's own layout: what tests share lives in helper modules, not in tests."""

import ast
from pathlib import Path

from tests.farm_scopes import nodeid_scope

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"


def package_of(path: Path) -> str:
    """The dotted package a file under the repository root belongs to."""
    folder = path.parent.relative_to(ROOT)
    return ".".join(folder.parts)


def imported_names(path: Path) -> set[str]:
    """Every dotted name one file imports, relative imports resolved.

    `from a.b import c` gives both `a.b` and `a.b.c`, since `c` may be a module.
    """
    imported: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package_of(path).rsplit(".", node.level - 1)[0]
                source = f"{base}.{source}" if source else base
            imported.add(source)
            imported.update(f"{source}.{alias.name}" for alias in node.names)
    return imported


def collected_file(dotted: str) -> Path | None:
    """The `test_*.py` file a dotted name imports, or None if it names no test module."""
    path = ROOT.joinpath(*dotted.split(".")).with_suffix(".py")
    return path if path.name.startswith("test_") and path.is_file() else None


def test_no_module_of_the_suite_imports_a_test_module() -> None:
    suite = sorted(TESTS.rglob("*.py"))
    assert len(suite) > 100
    importing = [
        f"{path.relative_to(ROOT)} imports {dotted}"
        for path in suite
        for dotted in sorted(imported_names(path))
        if collected_file(dotted) is not None
    ]
    assert not importing, "helpers tests share belong in a non-test module:\n" + "\n".join(
        importing
    )


def test_the_modules_of_a_farm_subpackage_are_one_unit_of_work_and_any_other_its_own() -> None:
    assert nodeid_scope("tests/e2e/traced/test_traces.py::test_a") == "tests/e2e/traced"
    assert nodeid_scope("tests/e2e/traced/test_trace_doc.py::test_b[x]") == "tests/e2e/traced"
    assert nodeid_scope("tests/e2e/test_limits.py::test_c") == "tests/e2e/test_limits.py"
    assert nodeid_scope("tests/integration/cli/test_x.py::T::test_d") == (
        "tests/integration/cli/test_x.py"
    )
    assert nodeid_scope("tests/unit/test_docs.py::test_e") == "tests/unit/test_docs.py"


def test_every_subpackage_of_the_e2e_tests_starts_its_farm_in_its_conftest() -> None:
    for folder in (TESTS / "e2e").iterdir():
        if folder.is_dir() and list(folder.glob("test_*.py")):
            assert (folder / "__init__.py").is_file(), folder
            assert 'scope="package"' in (folder / "conftest.py").read_text(), folder
