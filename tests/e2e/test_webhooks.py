"""Callbacks through the whole farm: a signed POST of the final task, retried, and refused
for addresses the farm may not reach."""

import json
import time
from dataclasses import replace
from typing import Any

import pytest

from farm_cli.launcher.farm import LocalFarm
from farm_core.trace_context import TRACEPARENT, new_traceparent, trace_id_of
from farm_core.webhook_signature import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)
from tests.e2e.conftest import Client, KeyFactory, fresh, http_client, new_tenant
from tests.helpers import eventually
from tests.pages import Site
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.e2e


def delivered(admin: Client, task_id: str) -> dict[str, Any]:
    """Polls GetTask until the task's callback is no longer pending; the task then."""

    def settled() -> dict[str, Any] | None:
        task = admin.get(task_id)
        return task if task["callbackStatus"] != "CALLBACK_STATUS_PENDING" else None

    return eventually(settled, within=30, interval=0.2, message=f"{task_id}: callback pending")


def test_the_final_task_is_posted_signed_after_two_failed_deliveries(
    admin: Client, site: Site
) -> None:
    secret = admin.http.get("/v1/webhookSecret").json()["secret"]
    with Receiver(500, 500, 200).running() as receiver:
        spec = fresh({"url": site.url("/page"), "content": {}, "callbackUrl": receiver.url})
        created = admin.create(spec)
        task = delivered(admin, created["id"])

    assert task["status"] == "TASK_STATUS_SUCCEEDED"
    assert task["callbackStatus"] == "CALLBACK_STATUS_DELIVERED"
    attempts = task["callbackAttempts"]
    assert [attempt["httpStatus"] for attempt in attempts] == [500, 500, 200]
    assert [attempt["error"] for attempt in attempts][-1] == ""
    assert len(receiver.received) == 3
    assert all(received.signed_by(secret) for received in receiver.received)
    last = receiver.received[-1]
    posted = json.loads(last.body)
    assert posted["id"] == created["id"]
    assert posted["status"] == "TASK_STATUS_SUCCEEDED"
    assert posted["result"] == task["result"]
    # A receiver detects a changed body, another secret, and a replay after its window.
    signature, timestamp = last.headers[SIGNATURE_HEADER], last.headers[TIMESTAMP_HEADER]
    tampered = last.body.replace(b"TASK_STATUS_SUCCEEDED", b"TASK_STATUS_FAILED")
    assert not verify(secret, signature, timestamp, tampered, time.time())
    assert not verify(secret + "x", signature, timestamp, last.body, time.time())
    assert not verify(secret, signature, timestamp, last.body, time.time() + 600)


def test_a_callback_carries_the_tasks_trace_though_the_farm_traces_nothing(
    admin: Client, site: Site
) -> None:
    caller = new_traceparent()
    with Receiver().running() as receiver:
        spec = fresh({"url": site.url("/page"), "content": {}, "callbackUrl": receiver.url})
        response = admin.http.post("/v1/tasks", json=spec, headers={TRACEPARENT: caller})
        assert response.status_code == 200, response.text
        delivered(admin, response.json()["id"])
    ((received),) = receiver.received
    assert trace_id_of(received.headers.get(TRACEPARENT, "")) == trace_id_of(caller)
    assert response.json()["traceId"] == trace_id_of(caller)


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data", "http://[fe80::1]/hook", "ftp://example.com/"],
)
def test_a_callback_to_a_refused_address_is_a_400_naming_callback_url(
    admin: Client, url: str
) -> None:
    response = admin.http.post(
        "/v1/tasks", json=fresh({"url": "http://127.0.0.1:9/", "content": {}, "callbackUrl": url})
    )
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith("callbackUrl"), response.json()


def test_the_farm_itself_is_refused_even_where_loopback_is_allowed(
    admin: Client, farm: LocalFarm
) -> None:
    # The test farm allows 127.0.0.0/8 (the receiver above); its own ports stay refused.
    response = admin.http.post(
        "/v1/tasks:batchCreate",
        json={
            "requests": [
                fresh({"url": "http://127.0.0.1:9/", "content": {}, "callbackUrl": farm.envoy_url})
            ]
        },
    )
    assert response.status_code == 200, response.text
    [error] = response.json()["errors"]
    assert error["field"] == "requests[0].callbackUrl", error
    assert "farm's own services" in error["message"]


def test_the_event_id_is_signed_so_a_changed_one_is_detected_and_farm_signature_stays(
    farm: LocalFarm, make_key: KeyFactory, site: Site
) -> None:
    key = make_key("tasks.write", "tasks.read", tenant=new_tenant("hooks"))
    with http_client(farm, key.secret) as http:
        tenant = Client(http, key.secret)
        old = http.get("/v1/webhookSecret").json()["secret"]
        new = http.post("/v1/webhookSecret:rotate").json()["secret"]
        with Receiver().running() as receiver:
            spec = fresh({"url": site.url("/page"), "content": {}, "callbackUrl": receiver.url})
            created = tenant.create(spec)
            delivered(tenant, created["id"])
    ((received),) = receiver.received
    assert received.headers[EVENT_ID_HEADER] == f"{created['id']}.1"
    # Signed by both secrets while the rotation's overlap lasts, as Farm-Signature is.
    assert received.event_signed_by(new) and received.event_signed_by(old)
    assert received.signed_by(new) and received.signed_by(old)
    # A replayer who changes the event id (to slip past a receiver's repeat check) is caught.
    forged = replace(received, headers={**received.headers, EVENT_ID_HEADER: f"{created['id']}.2"})
    assert not forged.event_signed_by(new)
    # Farm-Signature alone does not notice: a receiver that drops repeats checks this one.
    assert forged.signed_by(new)
