"""A grant reaches only the profile and baselines its task's spec (or session) names.

The grants are made as the scheduler makes them (farm_scheduler.grants) and shown
with agent-1's real credential to a real storage service.
"""

import datetime
import secrets

import grpc
import pytest

from farm.sessions.v1 import sessions_pb2
from farm.storage.v1 import baselines_pb2, ingest_pb2, profiles_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.grants import UploadGrant
from farm_scheduler.grants import Grants, spec_names
from tests.helpers import TEST_GRANTS
from tests.integration.storage.conftest import RPC_TIMEOUT, Storage, agent_token, token

pytestmark = pytest.mark.integration

TASK = "task-named"
SESSION = "ses_00112233445566aa"
VIEWPORT = tasks_pb2.Viewport(width=1280, height=800)
PNG = b"\x89PNG\r\n\x1a\n" + b"n" * 100
STATE = b'{"cookies": [{"name": "sid", "value": "1", "domain": "a.example", "path": "/"}]}'


def key(name: str) -> ingest_pb2.BaselineKey:
    """The baseline key of `name` for one page and viewport."""
    return ingest_pb2.BaselineKey(name=name, url="https://shop.example/", viewport=VIEWPORT)


def task_grant(tenant: str, spec: tasks_pb2.TaskSpec, form: str) -> str:
    """The grant of a task of `tenant` with `spec`, single or in a tree as publishing makes."""
    grant = UploadGrant(TASK, tenant, names=spec_names(spec))
    if form == "single":
        return TEST_GRANTS.sign(grant, 600)
    neighbour = UploadGrant("task-neighbour", tenant, names=frozenset())
    return TEST_GRANTS.sign_tree([(grant, 600.0), (neighbour, 600.0)])[0]


async def refusal(call: object) -> grpc.aio.AioRpcError:
    """The error a call (an awaitable) ended with."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call  # type: ignore[misc]
    return refused.value


async def profile_names(storage: Storage) -> list[str]:
    """The names of the storage tenant's saved profiles."""
    listed = await storage.profiles.ListProfiles(
        profiles_pb2.ListProfilesRequest(),
        metadata=token(storage.tenant, "artifacts.read"),
        timeout=RPC_TIMEOUT,
    )
    return sorted(profile.name for profile in listed.profiles)


async def baseline_names(storage: Storage) -> list[str]:
    """The names of the storage tenant's baselines."""
    listed = await storage.baselines.ListBaselines(
        baselines_pb2.ListBaselinesRequest(),
        metadata=token(storage.tenant, "artifacts.read"),
        timeout=RPC_TIMEOUT,
    )
    return sorted(baseline.name for baseline in listed.baselines)


async def save(storage: Storage, name: str, grant: str) -> object:
    return await storage.ingest.SaveProfile(
        ingest_pb2.SaveProfileRequest(name=name, state=STATE, grant=grant),
        metadata=agent_token(storage.tenant),
        timeout=RPC_TIMEOUT,
    )


async def load(storage: Storage, name: str, grant: str) -> bytes:
    reply = await storage.ingest.GetProfileState(
        ingest_pb2.GetProfileStateRequest(name=name, grant=grant),
        metadata=agent_token(storage.tenant),
        timeout=RPC_TIMEOUT,
    )
    return bytes(reply.state)


async def make_baseline(storage: Storage, name: str, artifact_id: str, grant: str) -> object:
    return await storage.ingest.CreateBaseline(
        ingest_pb2.CreateBaselineRequest(key=key(name), artifact_id=artifact_id, grant=grant),
        metadata=agent_token(storage.tenant),
        timeout=RPC_TIMEOUT,
    )


async def read_baseline(storage: Storage, name: str, grant: str) -> bytes:
    reply = await storage.ingest.GetBaselineImage(
        ingest_pb2.GetBaselineImageRequest(key=key(name), grant=grant),
        metadata=agent_token(storage.tenant),
        timeout=RPC_TIMEOUT,
    )
    return bytes(reply.image)


def assert_refused(refused: grpc.aio.AioRpcError, message: str) -> None:
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED
    assert refused.details() == message


@pytest.mark.parametrize("form", ["single", "tree"])
async def test_a_tasks_grant_loads_and_saves_its_own_profile_and_no_other(
    storage: Storage, form: str
) -> None:
    spec = tasks_pb2.TaskSpec(url="https://a.example/", profile="signed-in", save_profile=True)
    grant = task_grant(storage.tenant, spec, form)
    other = f"other-{secrets.token_hex(3)}"

    await save(storage, "signed-in", grant)
    loaded = await load(storage, "signed-in", grant)
    read = await refusal(load(storage, other, grant))
    written = await refusal(save(storage, other, grant))

    assert loaded == STATE
    assert_refused(read, f'grant: profile "{other}" is not this task\'s')
    assert_refused(written, f'grant: profile "{other}" is not this task\'s')
    assert await profile_names(storage) == ["signed-in"]


async def test_a_task_that_does_not_save_its_profile_may_only_load_it(storage: Storage) -> None:
    saver = task_grant(
        storage.tenant,
        tasks_pb2.TaskSpec(url="https://a.example/", profile="signed-in", save_profile=True),
        "single",
    )
    await save(storage, "signed-in", saver)
    loader = task_grant(
        storage.tenant, tasks_pb2.TaskSpec(url="https://a.example/", profile="signed-in"), "single"
    )

    loaded = await load(storage, "signed-in", loader)
    overwrite = await refusal(save(storage, "signed-in", loader))

    assert loaded == STATE
    assert_refused(overwrite, 'grant: profile "signed-in" is this task\'s to load, not to save')


@pytest.mark.parametrize("form", ["single", "tree"])
async def test_a_tasks_grant_makes_and_reads_its_own_baseline_and_no_other(
    storage: Storage, form: str
) -> None:
    spec = tasks_pb2.TaskSpec(
        url="https://shop.example/",
        screenshot=tasks_pb2.ScreenshotOptions(compare=tasks_pb2.CompareOptions(baseline="home")),
    )
    grant = task_grant(storage.tenant, spec, form)
    shot = await storage.upload(TASK, "screenshot", PNG, grant=grant)

    await make_baseline(storage, "home", shot.artifact.id, grant)
    image = await read_baseline(storage, "home", grant)
    made = await refusal(make_baseline(storage, "cart", shot.artifact.id, grant))
    read = await refusal(read_baseline(storage, "cart", grant))

    assert image == PNG
    assert_refused(made, 'grant: baseline "cart" is not this task\'s')
    assert_refused(read, 'grant: baseline "cart" is not this task\'s')
    assert await baseline_names(storage) == ["home"]


async def test_a_grant_older_than_names_reaches_no_profile_or_baseline(storage: Storage) -> None:
    unnamed = TEST_GRANTS.sign(UploadGrant(TASK, storage.tenant), 600)
    shot = await storage.upload(TASK, "screenshot", PNG, grant=unnamed)

    refusals = [
        await refusal(save(storage, "signed-in", unnamed)),
        await refusal(load(storage, "signed-in", unnamed)),
        await refusal(make_baseline(storage, "home", shot.artifact.id, unnamed)),
    ]

    assert [refused.code() for refused in refusals] == [grpc.StatusCode.PERMISSION_DENIED] * 3
    assert await profile_names(storage) == []
    assert await baseline_names(storage) == []


async def test_a_session_uses_its_profile_and_a_commands_grant_its_baseline(
    storage: Storage,
) -> None:
    grants = Grants(TEST_GRANTS, grace_seconds=60)
    expire = dt_in(600)
    session_grant = grants.for_session(
        SESSION, storage.tenant, 0, expire, dt_in(0), profile="signed-in"
    )
    command = sessions_pb2.SessionCommand(
        screenshot=tasks_pb2.ScreenshotOptions(compare=tasks_pb2.CompareOptions(baseline="home"))
    )
    command_grant = grants.for_command(SESSION, storage.tenant, 0, command, 40)
    shot = await storage.upload(SESSION, "command-1-screenshot", PNG, grant=command_grant)

    await save(storage, "signed-in", session_grant)
    other_profile = await refusal(load(storage, "other", session_grant))
    await make_baseline(storage, "home", shot.artifact.id, command_grant)
    session_baseline = await refusal(read_baseline(storage, "home", session_grant))
    other_baseline = await refusal(read_baseline(storage, "cart", command_grant))

    assert_refused(other_profile, 'grant: profile "other" is not this session\'s')
    assert_refused(session_baseline, 'grant: baseline "home" is not this session\'s')
    assert_refused(other_baseline, 'grant: baseline "cart" is not this session\'s')
    assert grants.for_command(SESSION, storage.tenant, 0, sessions_pb2.SessionCommand(), 40) == ""
    assert await profile_names(storage) == ["signed-in"]
    assert await baseline_names(storage) == ["home"]


def dt_in(seconds: float) -> datetime.datetime:
    """The time `seconds` from now (UTC)."""
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=seconds)
