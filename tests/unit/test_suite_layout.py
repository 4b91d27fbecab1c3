"""The test suite's own layout: what tests share lives in helper modules, not in tests."""

import ast
from pathlib import Path

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
