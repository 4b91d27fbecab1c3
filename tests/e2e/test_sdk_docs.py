"""docs/sdk.md's Python examples, each run as written against the test farm.

They name https://example.com, which the test farm's agents may not reach: each run
points it at a test page instead (https://example.com/missing at a missing one).
"""

import re
from pathlib import Path

import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.farms import ROOT
from tests.pages import Site

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

SDK_DOC = ROOT / "docs" / "sdk.md"
EXAMPLE_SITE = "https://example.com"


def python_examples(doc: Path) -> list[str]:
    """The ```python blocks of a Markdown file, in order."""
    return re.findall(r"^```python\n(.*?)^```$", doc.read_text(), flags=re.MULTILINE | re.DOTALL)


EXAMPLES = python_examples(SDK_DOC)


def test_the_sdk_doc_has_examples_for_each_part() -> None:
    code = "\n".join(EXAMPLES)
    for used in (
        "screenshot(",
        ".run(",
        ".submit(",
        ".wait(",
        ".download(",
        ".map(",
        "session(",
        "connect_playwright(",
        "AsyncClient",
        "TaskFailed",
        ".create_tasks(",
        ".list_tasks(",
        ".list_page(",
    ):
        assert used in code, used


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example-{n}" for n in range(len(EXAMPLES))])
def test_the_sdk_docs_example_runs(
    example: str,
    farm: LocalFarm,
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # As the page says: after `make run` nothing needs exporting (FARM_HOME only because
    # the test farm keeps its state elsewhere than the checkout's .farm).
    for name in ("FARM_URL", "FARM_API_KEY", "FARM_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FARM_HOME", str(farm.home))
    code = example.replace(EXAMPLE_SITE, site.url("/page"))
    exec(compile(code, f"{SDK_DOC}:example", "exec"), {"__name__": "__example__"})
    assert capsys.readouterr().out, "each example prints what it got"
