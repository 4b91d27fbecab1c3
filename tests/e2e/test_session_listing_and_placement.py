"""Sessions as tenants and agents meet them: listed per tenant over gRPC, placed on the
agent with the most free places, not listed while being placed, refused at a tenant's
open-sessions quota.

On the shared farm (two agents), beside test_sessions.py.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from farm.sessions.v1 import sessions_pb2, sessions_pb2_grpc
from farm_cli.launcher.farm import LocalFarm
from tests.e2e.conftest import AGENT_SLOTS, Client, KeyFactory, agent_metric, http_client
from tests.e2e.sessions_api import Sessions
from tests.helpers import eventually

pytestmark = pytest.mark.e2e


def test_sessions_over_grpc_are_listed_per_tenant(
    farm: LocalFarm, grpc_target: str, make_key: KeyFactory
) -> None:
    key = make_key("sessions", tenant="session-lister")
    metadata = (("authorization", f"Bearer {key.secret}"),)
    with grpc.insecure_channel(grpc_target) as channel:
        stub = sessions_pb2_grpc.SessionServiceStub(channel)
        created = stub.CreateSession(
            sessions_pb2.CreateSessionRequest(spec=sessions_pb2.SessionSpec(labels={"a": "b"})),
            metadata=metadata,
            timeout=60,
        )
        try:
            listed = stub.ListSessions(
                sessions_pb2.ListSessionsRequest(), metadata=metadata, timeout=10
            )
            assert [s.id for s in listed.sessions] == [created.id]
            assert listed.sessions[0].spec.labels == {"a": "b"}
        finally:
            stub.CloseSession(
                sessions_pb2.CloseSessionRequest(id=created.id), metadata=metadata, timeout=60
            )
        with pytest.raises(grpc.RpcError) as caught:
            stub.GetSession(
                sessions_pb2.GetSessionRequest(id=created.id),
                metadata=(("authorization", f"Bearer {farm.admin_key}"),),
                timeout=10,
            )
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_sessions_created_at_once_open_on_the_agent_with_the_most_free_places(
    farm: LocalFarm, sessions: Sessions
) -> None:
    # Before, both read the same heartbeats (neither session opened yet) and went to
    # the same agent, though the other had more places free.
    eventually(
        lambda: agent_metric(farm, "agent_places", state="free") == AGENT_SLOTS,
        within=90,
        interval=0.5,
        message=lambda: f"free places {agent_metric(farm, 'agent_places', state='free')}",
    )
    together = threading.Barrier(2)

    def create(_: int) -> dict[str, object]:
        together.wait(timeout=30)
        return sessions.create()

    with ThreadPoolExecutor(2) as pool:
        opened = list(pool.map(create, range(2)))
    try:
        assert sorted(str(session["agentId"]) for session in opened) == ["agent-1", "agent-2"]
    finally:
        for session in opened:
            sessions.close(str(session["id"]))


def test_a_session_still_being_placed_is_not_listed(sessions: Sessions, busy_agents: str) -> None:
    # Every place is held by a task: the create waits on each agent, then is refused.
    # Before, ListSessions showed it meanwhile, ACTIVE with no agent, then it vanished.
    with ThreadPoolExecutor(1) as pool:
        creating = pool.submit(sessions.http.post, "/v1/sessions", json={})
        unplaced: list[dict[str, object]] = []
        while not creating.done():
            response = sessions.http.get("/v1/sessions", params={"state": "SESSION_STATE_ACTIVE"})
            assert response.status_code == 200, response.text
            unplaced += [s for s in response.json()["sessions"] if not s["agentId"]]
            time.sleep(0.1)
        refused = creating.result()
    assert refused.status_code == 429, refused.text
    assert unplaced == []


def test_a_tenant_at_its_open_sessions_quota_is_refused(
    farm: LocalFarm, admin: Client, make_key: KeyFactory
) -> None:
    key = make_key("sessions", tenant="one-session-only")
    limits = {"maxOpenSessions": "1"}
    response = admin.http.patch("/v1/tenants/one-session-only/limits", json=limits)
    assert response.status_code == 200, response.text
    with http_client(farm, key.secret) as http:
        tenant_sessions = Sessions(http)
        first = tenant_sessions.create()
        try:
            refused = http.post("/v1/sessions", json={})
            assert refused.status_code == 429
            assert "maxOpenSessions" in refused.json()["message"]
        finally:
            tenant_sessions.close(first["id"])
        tenant_sessions.close(tenant_sessions.create()["id"])
