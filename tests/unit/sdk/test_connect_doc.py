"""docs/sdk.md quotes what `Client()` raises with no farm to call, or no key, as it says it."""

import re
from pathlib import Path

import pytest

from browserfarm.config import client_options

SDK_DOC = (Path(__file__).resolve().parents[3] / "docs" / "sdk.md").read_text()


def quoted(start: str) -> list[str]:
    """The parts between `…` of the page's quote of the ValueError that starts so."""
    spans = re.findall(r"(`+)ValueError: (.*?)\1(?!`)", SDK_DOC, flags=re.S)
    (text,) = [span for _, span in spans if span.startswith(start)]
    return [part.strip() for part in " ".join(text.split()).split("…") if part.strip()]


@pytest.mark.parametrize(
    ("start", "admin_key"),
    [("no farm to call", True), ("no API key", False)],
    ids=["no-farm", "no-key"],
)
def test_the_page_quotes_the_error_client_raises(
    start: str, admin_key: bool, tmp_path: Path
) -> None:
    if admin_key:
        (tmp_path / "admin-key").write_text("bf_local")
    with pytest.raises(ValueError) as error:
        client_options(None, None, {"FARM_HOME": str(tmp_path)}, Path("/"))
    for part in quoted(start):
        assert part in str(error.value), (part, str(error.value))
