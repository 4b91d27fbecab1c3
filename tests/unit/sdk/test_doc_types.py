"""docs/sdk.md's Python examples pass `mypy --strict`, as a user's typed script would copy them."""

import re
from pathlib import Path

import pytest
from mypy import api

SDK_DOC = Path(__file__).resolve().parents[3] / "docs" / "sdk.md"

pytestmark = pytest.mark.slow


def test_the_sdk_docs_examples_pass_mypy_strict(tmp_path: Path) -> None:
    examples = re.findall(
        r"^```python\n(.*?)^```$", SDK_DOC.read_text(), flags=re.MULTILINE | re.DOTALL
    )
    assert examples
    scripts = []
    for number, example in enumerate(examples):
        script = tmp_path / f"example_{number}.py"
        script.write_text(example)
        scripts.append(str(script))
    # The user's own settings: none of the repository's (its plugins, overrides, files).
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n")
    cache = tmp_path / "cache"
    report, errors, status = api.run(
        ["--strict", "--config-file", str(config), "--cache-dir", str(cache), *scripts]
    )
    assert status == 0, report + errors
