"""`farm up --infra-only` says how a service started by hand logs in to its NATS."""

import asyncio
import json
import re
from pathlib import Path

import nats
import pytest

from farm_cli.commands.up import banner
from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.farm import LocalFarm
from farm_core.nats_access import NatsAccess
from tests.conftest import S3Server
from tests.integration.cli.conftest import on_session_s3

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def logs_in(access: NatsAccess) -> None:
    """Connects once as `access` says, and closes; raises if NATS refuses."""
    client = await nats.connect(**access.connect_options(), allow_reconnect=False)
    await client.close()


def test_the_login_the_banner_names_lets_a_service_in(
    infra_config: FarmConfig, seaweedfs: S3Server
) -> None:
    # Its own NATS, whose users the banner names; the session's SeaweedFS.
    with LocalFarm(on_session_s3(infra_config, seaweedfs), report=lambda line: None) as farm:
        said = banner(farm)

        named = re.search(r"users ([\w, -]+): .*NATS_USER.*\n.*NATS_PASSWORD from (\S+)", said)
        assert named is not None, said
        assert "scheduler" in named.group(1).split(", ")
        password = json.loads(Path(named.group(2)).read_text())["scheduler"]
        asyncio.run(logs_in(NatsAccess(farm.nats_url, "scheduler", password)))
