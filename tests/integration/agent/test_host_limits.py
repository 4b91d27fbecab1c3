"""Farm-wide politeness per host: two agents' intakes share one host's concurrency and rate."""

import asyncio
import uuid

import pytest
from nats.js import JetStreamContext

from farm.tasks.v1 import tasks_pb2
from farm_agent.browser.actions import CapturedArtifact
from farm_agent.kv import HOST_SLOTS_BUCKET, host_slots_bucket, own_config
from farm_agent.limits.leases import Busy, Lease, SlotLimiter
from farm_agent.limits.slots import SlotLimits
from farm_agent.work.uploader import ArtifactOwner
from tests.integration.agent.conftest import (
    SUCCEEDED,
    Events,
    StartIntake,
    content_of,
    publish,
    start_two_agents,
)
from tests.integration.agent.fakes import FakeUploader
from tests.pages import Site

pytestmark = pytest.mark.integration


# Agents that find the host busy ask again soon.
HOST_WAIT_SECONDS = 0.3


async def test_two_agents_never_run_more_than_k_tasks_at_once_on_one_host(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_two_agents(
        start_intake, host_wait_seconds=HOST_WAIT_SECONDS, host_max_concurrency=2, host_max_rate=100
    )
    counter = uuid.uuid4().hex
    # Each page waits (15 s at most) until two are in flight, so the two held slots are seen
    # together however slowly a loaded machine sets up the contexts around them, then holds
    # 0.8 s more: a third let in beside them would be seen too.
    page = f"/count/{counter}?ms=15000&meet=2&hold=800"
    task_ids = [await publish(js, content_of(site, page)) for _ in range(6)]

    for task_id in task_ids:
        final = await events.final(task_id, within=60)
        # Waiting for the host is no attempt.
        assert (final.status, final.attempt) == (SUCCEEDED, 1)

    assert site.most_in_flight[counter] == 2
    # Both agents took part: the limit held across them, not only within one.
    assert {event.agent_id for event in events.received} == {"agent-a", "agent-b"}


class SeenUploader(FakeUploader):
    """Notes (`seen`) that an upload began."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()

    async def upload(
        self, owner: ArtifactOwner, artifact: CapturedArtifact
    ) -> tasks_pb2.ArtifactRef:
        self.seen.set()
        return await super().upload(owner, artifact)


async def test_the_upload_does_not_wait_for_the_host_slot_to_be_given_back(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    site: Site,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    uploader = SeenUploader()
    give_back = Lease.release

    async def slow_give_back(lease: Lease) -> None:
        # A slow NATS round trip: the give-back ends only after the upload began.
        await asyncio.wait_for(uploader.seen.wait(), timeout=10)
        await give_back(lease)

    monkeypatch.setattr(Lease, "release", slow_give_back)
    await start_intake(storage=uploader)
    task_id = await publish(
        js,
        tasks_pb2.TaskSpec(
            url=site.url("/page"), timeout_ms=30_000, screenshot=tasks_pb2.ScreenshotOptions()
        ),
    )

    final = await events.final(task_id, within=30)
    assert final.status == SUCCEEDED, final.error
    assert len(uploader.uploads) == 1


async def test_task_starts_on_one_host_keep_to_the_rate(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    rate = 2.0
    await start_two_agents(
        start_intake,
        host_wait_seconds=HOST_WAIT_SECONDS,
        host_max_concurrency=10,
        host_max_rate=rate,
    )
    task_ids = [await publish(js, content_of(site)) for _ in range(7)]

    starts = []
    for task_id in task_ids:
        final = await events.final(task_id, within=60)
        assert (final.status, final.attempt) == (SUCCEEDED, 1)
        starts.append(events.of(task_id)[0].time.ToNanoseconds() / 1e9)

    # A burst of one second's worth (2), then 2 per second: 5 more take at least 2.5 s.
    starts.sort()
    assert starts[-1] - starts[0] >= (len(starts) - rate) / rate - 0.2


async def test_a_limiter_remembers_only_its_latest_entries(js: JetStreamContext) -> None:
    limiter = SlotLimiter(await host_slots_bucket(js), "host", remembered=3)
    limits = SlotLimits(max_concurrency=1, max_rate=None, lease_seconds=30)
    leases = []
    for index in range(5):
        lease = await limiter.acquire(f"host-{index}.test", limits, 0)
        assert isinstance(lease, Lease)
        leases.append(lease)

    assert len(limiter) == 3
    # A forgotten entry is read again: host-0 is still held, so a second lease waits.
    assert isinstance(await limiter.acquire("host-0.test", limits, 0), Busy)
    for lease in leases:
        await lease.release()
    again = await limiter.acquire("host-0.test", limits, 0)
    assert isinstance(again, Lease)
    # Given back too: a lease left held renews itself after the test, on a closed connection.
    await again.release()


async def test_a_host_slots_bucket_deleted_under_the_agent_is_made_again(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    site: Site,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Before the fix, every later task to the host failed until the agent restarted.
    await start_intake(retry_base_seconds=0.05, retry_max_seconds=0.1)
    first = await events.final(await publish(js, content_of(site)))
    assert first.status == SUCCEEDED
    await js.delete_key_value(HOST_SLOTS_BUCKET)
    spec = content_of(site)
    spec.max_attempts = 1

    final = await events.final(await publish(js, spec), within=60)

    assert (final.status, final.attempt) == (SUCCEEDED, 1), final.error
    made = await js.stream_info(f"KV_{HOST_SLOTS_BUCKET}")
    assert made.config.max_age == own_config(HOST_SLOTS_BUCKET).ttl
    assert any(
        record.levelname == "WARNING" and f"bucket {HOST_SLOTS_BUCKET} was gone" in record.message
        for record in caplog.records
    )
