"""A user's script type-checks as written against the SDK: docs/sdk.md's examples pass
`mypy --strict`, and a client setting mistyped does not."""

import re
from pathlib import Path

import pytest
from mypy import api

SDK_DOC = Path(__file__).resolve().parents[3] / "docs" / "sdk.md"

pytestmark = pytest.mark.slow


def _mypy_strict(folder: Path, scripts: list[str]) -> tuple[str, int]:
    """mypy --strict's report on `scripts` (their text), with none of the repository's settings."""
    paths = []
    for number, script in enumerate(scripts):
        path = folder / f"script_{number}.py"
        path.write_text(script)
        paths.append(str(path))
    # The user's own settings: none of the repository's (its plugins, overrides, files).
    config = folder / "mypy.ini"
    config.write_text("[mypy]\n")
    cache = folder / "cache"
    report, errors, status = api.run(
        ["--strict", "--config-file", str(config), "--cache-dir", str(cache), *paths]
    )
    return report + errors, status


def test_the_sdk_docs_examples_pass_mypy_strict(tmp_path: Path) -> None:
    examples = re.findall(
        r"^```python\n(.*?)^```$", SDK_DOC.read_text(), flags=re.MULTILINE | re.DOTALL
    )
    assert examples
    report, status = _mypy_strict(tmp_path, examples)
    assert status == 0, report


def test_a_client_setting_misnamed_or_of_the_wrong_type_fails_mypy(tmp_path: Path) -> None:
    script = (
        "import browserfarm\n"
        "browserfarm.Client(tiemout=5)\n"
        'browserfarm.AsyncClient(timeout="30")\n'
        'browserfarm.Client(timeout=5, max_attempts=2, transport="http", environ={})\n'
    )
    report, status = _mypy_strict(tmp_path, [script])
    assert status == 1, report
    assert 'script_0.py:2: error: Unexpected keyword argument "tiemout"' in report, report
    assert 'script_0.py:3: error: Argument "timeout" to "AsyncClient" has incompatible type' in (
        report
    ), report
    assert "script_0.py:4:" not in report, report
