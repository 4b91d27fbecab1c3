"""A hostile tenant against another's objects, through the real edge (docs/security.md).

Tenant B, with keys of its own only, tries to reach what tenant A has: the sessions'
browsers behind their DevTools ports, objects named in a path and again in a query.
"""

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from farm_agent.sessions.browser import LISTENING_LINE
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import KeyFactory, http_client, new_tenant
from tests.e2e.sessions_api import Sessions
from tests.pages import Site

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tenant_a(farm: LocalFarm, make_key: KeyFactory) -> Iterator[httpx.Client]:
    key = make_key("sessions", "tasks.write", "tasks.read", tenant=new_tenant("victim"))
    with http_client(farm, key.secret) as http:
        yield http


@pytest.fixture(scope="module")
def tenant_b(farm: LocalFarm, make_key: KeyFactory) -> Iterator[httpx.Client]:
    key = make_key("sessions", "tasks.write", "tasks.read", tenant=new_tenant("hostile"))
    with http_client(farm, key.secret) as http:
        yield http


def devtools_ports(farm: LocalFarm, agent_id: str) -> set[int]:
    """The DevTools ports of the session browsers (spares too) agent `agent_id` runs."""
    logs = (farm.config.home / "agents" / agent_id).glob("**/chromium.log")
    return {int(found["port"]) for path in logs if (found := LISTENING_LINE.search(_read(path)))}


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:  # the browser ended meanwhile
        return ""


def test_no_page_on_another_agent_reaches_a_session_browsers_devtools_port(
    farm: LocalFarm, tenant_a: httpx.Client, tenant_b: httpx.Client, site: Site
) -> None:
    """Agents on one host share its loopback: each refuses every agent's DevTools ports.

    Before, an agent refused only its own, so with loopback allowed (the local farm's
    --allow-private) a page on another agent read tenant A's tabs at /json/list and
    drove them over the port's WebSocket, past every check of the CDP filter.
    """
    victims, hostiles = Sessions(tenant_a), Sessions(tenant_b)
    secret = secrets.token_hex(8)
    with victims.opened() as session:
        victims.run(session["id"], url=site.url(f"/?secret={secret}"), content={})
        ports = devtools_ports(farm, session["agentId"])
        assert ports, f"no DevTools port found for {session['agentId']}"
        opened: list[str] = []
        try:
            # The sessions go to the agent with the most free places: B's soon lands
            # on another agent than A's.
            for _ in range(3):
                attacker = hostiles.create()
                opened.append(attacker["id"])
                if attacker["agentId"] != session["agentId"]:
                    break
            else:
                pytest.fail(f"every session of tenant B was placed on {session['agentId']}")
            for port in sorted(ports):
                command = {
                    "url": f"http://127.0.0.1:{port}/json/list",
                    "content": {"format": "CONTENT_FORMAT_TEXT"},
                }
                answer = tenant_b.post(f"/v1/sessions/{attacker['id']}:run", json=command)
                assert secret not in answer.text
                assert answer.status_code == 400, answer.text
                assert "BLOCKED_URL" in answer.text
                assert "one of the farm's own services" in answer.text
        finally:
            for session_id in opened:
                hostiles.close(session_id)


@pytest.mark.parametrize("call", ["get", "cancel"])
def test_a_query_naming_another_object_than_the_path_is_refused(
    tenant_b: httpx.Client, site: Site, call: str
) -> None:
    """`/v1/tasks/A?id=B` acted on B (the transcoder lets the query win) while the path,
    and Envoy's access log, named A."""
    own = tenant_b.post("/v1/tasks", json={"url": site.url("/"), "content": {}}).json()["id"]
    other = tenant_b.post("/v1/tasks", json={"url": site.url("/"), "content": {}}).json()["id"]

    if call == "get":
        answer = tenant_b.get(f"/v1/tasks/{own}", params={"id": other})
    else:
        answer = tenant_b.post(f"/v1/tasks/{own}:cancel", params={"id": other})

    assert answer.status_code == 400, answer.text
    assert answer.json()["message"].startswith("id: is given by the path /v1/tasks/")
    assert tenant_b.get(f"/v1/tasks/{other}").json()["status"] != "TASK_STATUS_CANCELLED"
