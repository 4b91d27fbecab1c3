"""The docs' shell examples, run as written against the test farm, one shell per page.

tests/unit/test_doc_examples.py holds each curl line to the protos and
tests/unit/test_cli_docs.py parses each `farm` line; this runs them. Each page's
```sh blocks go through one bash (`set -euo pipefail`, curl failing on an HTTP
error), so a flag or field that is gone, a path that moved or a command that exits
non-zero fails the page. The JSON field names the pages' `# {...}` comments show as
the answer must appear in what the commands printed.

Only what cannot run here is changed: the farm's port and FARM_HOME, every
`*.example*` host (the closed network has none) for a local page at the same path,
and the ids the pages elide (`9b1c…`, `art_…`, `bsl_…`) for real ones made first.
"""

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from farm_cli.launcher.farm import LocalFarm
from tests.farms import ROOT
from tests.helpers import eventually
from tests.unit.markdown import shell_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.database_neutral]

PAGES = ["README.md", "docs/cli.md", "docs/tasks.md", "docs/webhooks.md"]
# What the pages' examples click, fill and read: a menu, a sign-in form that shows
# #account, an order list, a clock; a console error and a cookie for `collect`.
SHOP = b"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<script>console.error("boom")</script></head><body><h1>Shop</h1>
<button id="menu">Menu</button><input id="user"><input id="password" type="password">
<button id="sign-in" onclick="document.body.insertAdjacentHTML('beforeend',
 '<p id=account>signed in</p>')">Sign in</button>
<ul><li class="order">order 1</li></ul><span class="clock">12:00</span></body></html>"""
EXAMPLE_HOST = re.compile(r"https?://((?:[\w-]+\.)*example(?:\.[a-z]+)?)")


class Shop:
    """The page server: SHOP at every path; each POST (a callback) kept."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        shop = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("set-cookie", "sid=s1; Path=/; HttpOnly; SameSite=Lax")
                self.send_header("content-length", str(len(SHOP)))
                self.end_headers()
                self.wfile.write(SHOP)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                shop.posts.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture(scope="module")
def shop() -> Iterator[Shop]:
    served = Shop()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture(scope="module")
def elided_ids(farm: LocalFarm, shop: Shop) -> dict[str, str]:
    """Real ids for the elided ones: a task with its screenshot, and a baseline."""
    headers = {"authorization": f"Bearer {farm.admin_key}"}
    spec = {
        "url": f"{shop.url}/docs/cart",
        "cacheTtlSeconds": 0,
        "screenshot": {"compare": {"baseline": "docs-cart"}},
    }
    with httpx.Client(base_url=farm.envoy_url, headers=headers, timeout=120) as http:
        first = http.post("/v1/tasks:run", json=spec).json()
        assert first["status"] == "TASK_STATUS_SUCCEEDED", first
    return {
        "TASK": first["id"],
        "ART": first["result"]["artifacts"][0]["id"],
        "BASELINE": first["result"]["comparison"]["baselineId"],
    }


def page_script(page: str, farm: LocalFarm, shop: Shop, ids: dict[str, str]) -> str:
    """The page's ```sh blocks, without `make` ones, pointed at this farm, shop and ids."""
    edge = farm.envoy_url.removeprefix("http://")
    blocks = [b for b in shell_blocks((ROOT / page).read_text()) if not b.startswith("make ")]
    script = "\n".join(blocks)
    script = EXAMPLE_HOST.sub(lambda host: f"{shop.url}/{host.group(1)}", script)
    script = script.replace("localhost:8080", edge).replace(
        ".farm/admin-key", str(farm.admin_key_path)
    )
    script = script.replace(".venv/bin/", f"{ROOT}/.venv/bin/")
    script = re.sub(r"\bart_[0-9a-f]*…", ids["ART"], script)
    script = re.sub(r"\bbsl_…", ids["BASELINE"], script)
    return re.sub(r"\b[0-9a-f]+…", ids["TASK"], script)


def answer_fields(page: str) -> set[str]:
    """The JSON names the page's comments show in an answer (`# {"id": …`)."""
    comments = [
        line.split("#", 1)[1]
        for block in shell_blocks((ROOT / page).read_text())
        for line in block.splitlines()
        if line.lstrip().startswith("#")
    ]
    return set(re.findall(r'"([a-zA-Z]+)":', "\n".join(comments)))


def write_inputs(directory: Path, shop: Shop) -> None:
    """The files cli.md's examples read, as the page describes them."""
    (directory / "urls.txt").write_text(f"# the batch\n{shop.url}/one\n\n{shop.url}/two\n")
    specs = [
        {"url": f"{shop.url}/s{n}", "content": {}, "labels": {"job": "nightly"}} for n in range(3)
    ]
    lines = "\n".join(json.dumps(spec) for spec in specs) + "\n"
    (directory / "specs.jsonl").write_text(lines)
    (directory / "nightly.jsonl").write_text(lines)


@pytest.mark.parametrize("page", PAGES, ids=[Path(page).stem for page in PAGES])
def test_the_pages_shell_examples_run_and_answer_what_they_show(
    page: str, farm: LocalFarm, shop: Shop, elided_ids: dict[str, str], tmp_path: Path
) -> None:
    if shutil.which("jq") is None:
        pytest.skip("the pages pipe answers through jq")
    write_inputs(tmp_path, shop)
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"FARM_URL", "FARM_API_KEY", "FARM_CA_FILE"}
    }
    env |= {
        "FARM_HOME": str(farm.home),
        "PATH": f"{ROOT / '.venv' / 'bin'}:{env['PATH']}",
    }
    prelude = 'set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\nset -x\n'
    ran = subprocess.run(
        ["bash", "-c", prelude + page_script(page, farm, shop, elided_ids)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, f"{page}: exit {ran.returncode}\n{ran.stderr[-3000:]}"
    missing = sorted(name for name in answer_fields(page) if f'"{name}"' not in ran.stdout)
    assert not missing, f"{page} shows {missing} in an answer; the farm printed none"


def test_a_callback_of_the_webhooks_example_passes_the_pages_own_checks(
    farm: LocalFarm, shop: Shop, elided_ids: dict[str, str]
) -> None:
    """webhooks.md's example task calls back; the page's Python checks accept it."""
    checks: dict[str, object] = {}
    for block in re.findall(
        r"^```python\n(.*?)^```$", (ROOT / "docs/webhooks.md").read_text(), re.M | re.S
    ):
        exec(block, checks)
    script = page_script("docs/webhooks.md", farm, shop, elided_ids)
    env = {**os.environ, "FARM_HOME": str(farm.home)}
    subprocess.run(["bash", "-c", script], env=env, check=True, capture_output=True)
    headers, body = eventually(
        lambda: next((post for post in shop.posts if post[0].get("Farm-Task-Id")), None),
        within=30,
        interval=0.2,
        message="no callback arrived",
    )
    secret = httpx.get(
        f"{farm.envoy_url}/v1/webhookSecret",
        headers={"authorization": f"Bearer {farm.admin_key}"},
    ).json()["secret"]
    assert checks["is_from_the_farm"](secret, headers, body)  # type: ignore[operator]
    assert checks["event_is_from_the_farm"](secret, headers, body)  # type: ignore[operator]


def test_the_readmes_python_example_runs(
    farm: LocalFarm, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README's SDK lines (docs/sdk.md's are tests/e2e/test_sdk_docs.py's): a PNG comes back."""
    for name in ("FARM_URL", "FARM_API_KEY", "FARM_CA_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FARM_HOME", str(farm.home))
    (block,) = re.findall(r"^```python\n(.*?)^```$", (ROOT / "README.md").read_text(), re.M | re.S)
    names: dict[str, object] = {}
    exec(EXAMPLE_HOST.sub(lambda host: f"{shop.url}/{host.group(1)}", block), names)
    assert isinstance(names["png"], bytes) and names["png"].startswith(b"\x89PNG")
