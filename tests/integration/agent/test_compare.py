"""Screenshots compared with the tenant's baseline, and profiles, in tasks run on real pages."""

import io
import json

import pytest
from google.protobuf import json_format
from nats.js import JetStreamContext
from PIL import Image

from farm.tasks.v1 import tasks_pb2
from farm_core.saved import BaselineKey
from tests.integration.agent.conftest import (
    FAILED,
    SUCCEEDED,
    Events,
    StartIntake,
    grant_of,
    publish,
)
from tests.integration.agent.fakes import FakeSavedState, FakeUploader
from tests.pages import Site

pytestmark = pytest.mark.integration

BUY_BOX = tasks_pb2.Box(x=100, y=200, width=120, height=40)


def compared(
    site: Site,
    query: str,
    *,
    mask: tuple[str, ...] = (),
    full_page: bool = False,
    threshold: float = 0,
) -> tasks_pb2.TaskSpec:
    """A task that screenshots /visual?<query> and compares it with the baseline "home"."""
    return tasks_pb2.TaskSpec(
        url=site.url(f"/visual?{query}"),
        timeout_ms=20_000,
        max_attempts=1,
        screenshot=tasks_pb2.ScreenshotOptions(
            full_page=full_page,
            compare=tasks_pb2.CompareOptions(baseline="home", mask=list(mask), threshold=threshold),
        ),
    )


async def comparison_of(
    js: JetStreamContext, events: Events, spec: tasks_pb2.TaskSpec, tenant: str = "acme"
) -> tasks_pb2.TaskResult:
    final = await events.final(await publish(js, spec, tenant=tenant))
    assert final.status == SUCCEEDED, final.error
    return final.result


async def test_the_first_screenshot_becomes_the_baseline_and_the_same_page_then_differs_in_nothing(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    saved: FakeSavedState,
    site: Site,
) -> None:
    await start_intake()

    first = await comparison_of(js, events, compared(site, "button=steelblue"))
    second = await comparison_of(js, events, compared(site, "button=steelblue&utm=x"))

    assert first.comparison.new_baseline
    assert first.comparison.passed
    [(tenant, key)] = saved.baselines
    # Kept per URL without its query, and viewport.
    assert (tenant, key) == ("acme", BaselineKey("home", site.url("/visual"), 1280, 800))
    assert saved.owners and all(owner.grant == grant_of(owner.owner_id) for owner in saved.owners)
    assert not second.comparison.new_baseline
    assert second.comparison.baseline_id == first.comparison.baseline_id
    assert (second.comparison.diff_ratio, second.comparison.passed) == (0, True)
    assert not second.comparison.HasField("changed")
    assert not second.comparison.HasField("diff")
    assert [ref.kind for ref in second.artifacts] == [tasks_pb2.ARTIFACT_KIND_SCREENSHOT]


async def test_a_changed_element_is_boxed_and_its_diff_image_stored(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    uploader: FakeUploader,
    site: Site,
) -> None:
    await start_intake()
    await comparison_of(js, events, compared(site, "button=steelblue"))

    result = await comparison_of(js, events, compared(site, "button=crimson"))

    comparison = result.comparison
    assert not comparison.passed
    assert comparison.changed == BUY_BOX
    assert comparison.diff_ratio == pytest.approx(120 * 40 / (1280 * 800))
    assert comparison.diff.kind == tasks_pb2.ARTIFACT_KIND_DIFF
    assert comparison.diff in result.artifacts
    _, _, diff = uploader.uploads[-1]
    assert (diff.name, diff.content_type) == ("diff", "image/png")
    with Image.open(io.BytesIO(diff.data)) as image:
        assert image.size == (1280, 800)
        assert image.getpixel((160, 220)) == (255, 0, 0)


async def test_a_masked_element_may_change_and_an_unmasked_one_may_not(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake()
    await comparison_of(js, events, compared(site, "stamp=09:00", mask=("#stamp",)))

    masked = await comparison_of(js, events, compared(site, "stamp=17:45", mask=("#stamp",)))
    # A few glyphs are within the default threshold (0.001); not within a stricter one.
    strict = compared(site, "stamp=17:45", threshold=1e-9)
    unmasked = await comparison_of(js, events, strict)

    assert (masked.comparison.diff_ratio, masked.comparison.passed) == (0, True)
    assert 0 < unmasked.comparison.diff_ratio < 0.001
    assert not unmasked.comparison.passed
    changed = unmasked.comparison.changed
    assert changed.x >= 400 and changed.x + changed.width <= 500
    assert changed.y >= 200 and changed.y + changed.height <= 240


async def test_a_full_page_of_another_height_is_a_size_mismatch(
    js: JetStreamContext, start_intake: StartIntake, events: Events, site: Site
) -> None:
    await start_intake()
    await comparison_of(js, events, compared(site, "height=0", full_page=True))

    result = await comparison_of(js, events, compared(site, "height=1500", full_page=True))

    assert result.comparison.diff_ratio == 1
    assert not result.comparison.passed
    assert result.comparison.size_mismatch == (
        "the baseline is 1280x800 pixels, the screenshot 1280x1500"
    )


async def test_another_tenants_screenshot_starts_its_own_baseline(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    saved: FakeSavedState,
    site: Site,
) -> None:
    await start_intake()
    await comparison_of(js, events, compared(site, "button=steelblue"), tenant="acme")

    other = await comparison_of(js, events, compared(site, "button=crimson"), tenant="globex")

    assert other.comparison.new_baseline
    assert {tenant for tenant, _ in saved.baselines} == {"acme", "globex"}


def page_state(result: tasks_pb2.TaskResult) -> str:
    """What /login found: its #state text."""
    return str(json_format.MessageToDict(result.json)["state"])


def login(
    site: Site, *, profile: str = "", save: bool = False, sign_in: bool = False
) -> tasks_pb2.TaskSpec:
    """A task on /login that may sign in, and extracts what the page finds."""
    return tasks_pb2.TaskSpec(
        url=site.url("/login"),
        timeout_ms=20_000,
        max_attempts=1,
        profile=profile,
        save_profile=save,
        steps=[tasks_pb2.Step(click="#sign-in")] if sign_in else [],
        extract=tasks_pb2.ExtractOptions(fields={"state": "#state"}),
    )


async def test_a_task_saves_its_profile_and_a_later_task_starts_signed_in(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    saved: FakeSavedState,
    site: Site,
) -> None:
    await start_intake()

    signed_in = await comparison_of(js, events, login(site, profile="ann", save=True, sign_in=True))
    later = await comparison_of(js, events, login(site, profile="ann"))
    stranger = await comparison_of(js, events, login(site, profile="ann"), tenant="globex")

    assert page_state(signed_in) == "cookie, local storage ann"
    state = json.loads(saved.profiles[("acme", "ann")])
    assert [cookie["name"] for cookie in state["cookies"]] == ["sid"]
    assert page_state(later) == "cookie, local storage ann"
    assert page_state(stranger) == "no cookie, no local storage"
    # Each load and save showed storage the grant of the task it served.
    assert len(saved.owners) == 4
    assert all(owner.grant == grant_of(owner.owner_id) for owner in saved.owners)


async def test_a_failed_task_does_not_save_its_profile(
    js: JetStreamContext,
    start_intake: StartIntake,
    events: Events,
    saved: FakeSavedState,
    site: Site,
) -> None:
    await start_intake()
    spec = login(site, profile="ann", save=True, sign_in=True)
    # Signed in, the task then fails (at once: no waiting out a missing element).
    spec.steps.append(tasks_pb2.Step(evaluate="() => { throw new Error('after sign-in'); }"))

    final = await events.final(await publish(js, spec))

    assert (final.status, final.error.code) == (FAILED, "SCRIPT_FAILED")
    assert saved.profiles == {}
