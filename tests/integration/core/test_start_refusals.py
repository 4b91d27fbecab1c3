"""A service whose NATS login or S3 key pair is refused ends its start saying which settings.

Each service runs as an operator starts it (`python -m farm_<service>`), against a
real nats-server with users and a real SeaweedFS with a key pair.
"""

from pathlib import Path

import pytest

from farm_core.runtime import START_FAILURE_EXIT_CODE
from tests.conftest import NatsServer, S3Server
from tests.integration.configured_nats import FARM_USER, ConfiguredNats
from tests.service_start import start_service, start_service_in_background

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("service", ["scheduler", "agent"])
def test_a_refused_nats_login_ends_the_start_naming_the_login_settings(
    service: str, configured_nats: ConfiguredNats, tmp_path: Path
) -> None:
    refusal = start_service(
        service,
        tmp_path,
        {
            "NATS_URL": configured_nats.url,
            "NATS_USER": FARM_USER[0],
            "NATS_PASSWORD": "not-the-password",
            # Far past the refusal: a start that waited it out would say "gave up".
            "FARM_NATS_START_TIMEOUT_SECONDS": "40",
            "FARM_SCHEDULER_PORT": "0",
            "FARM_SCHEDULER_METRICS_PORT": "0",
            "FARM_AGENT_PORT": "0",
            "FARM_AGENT_METRICS_PORT": "0",
            "FARM_AGENT_SESSION_PORT": "0",
        },
    )

    assert refusal.returncode == START_FAILURE_EXIT_CODE, refusal.stderr
    assert f"refused the login of NATS_USER='{FARM_USER[0]}'" in refusal.stderr
    assert "check NATS_USER and NATS_PASSWORD" in refusal.stderr
    assert "gave up" not in refusal.stderr
    assert "Traceback" not in refusal.stderr
    assert "not-the-password" not in refusal.stderr


@pytest.mark.parametrize(
    ("wrong", "code"),
    [("secret", "SignatureDoesNotMatch"), ("access-key", "InvalidAccessKeyId")],
    ids=["wrong-secret", "unknown-access-key"],
)
def test_a_refused_s3_key_pair_ends_the_start_at_once_naming_the_key_settings(
    wrong: str, code: str, seaweedfs: S3Server, nats_server: NatsServer, tmp_path: Path
) -> None:
    access_key = "not-a-known-key" if wrong == "access-key" else seaweedfs.credentials.access_key
    secret = "not-the-secret-key" if wrong == "secret" else seaweedfs.credentials.secret_key
    refusal = start_service(
        "storage",
        tmp_path,
        {
            "NATS_URL": nats_server.url,
            "S3_ENDPOINT": seaweedfs.endpoint,
            "S3_ACCESS_KEY": access_key,
            "S3_SECRET_KEY": secret,
            "S3_BUCKET": "a-bucket-not-made-yet",
            # Far past the refusal: a start that waited it out would say "within 40 s".
            "FARM_STORAGE_S3_READY_TIMEOUT_SECONDS": "40",
            "FARM_STORAGE_PORT": "0",
            "FARM_STORAGE_METRICS_PORT": "0",
        },
    )

    assert refusal.returncode == START_FAILURE_EXIT_CODE, refusal.stderr
    assert (
        f"refused storage's key pair (S3_ACCESS_KEY='{access_key}') "
        f"making bucket 'a-bucket-not-made-yet': {code}"
    ) in refusal.stderr
    assert "check S3_ACCESS_KEY and S3_SECRET_KEY" in refusal.stderr
    assert "within 40 s" not in refusal.stderr
    assert "waiting for S3" not in refusal.stderr
    assert "Traceback" not in refusal.stderr
    assert secret not in refusal.stderr


def test_auth_refused_its_nats_login_keeps_serving_and_names_the_login_settings(
    configured_nats: ConfiguredNats, tmp_path: Path
) -> None:
    auth = start_service_in_background(
        "auth",
        tmp_path,
        {
            "NATS_URL": configured_nats.url,
            "NATS_USER": FARM_USER[0],
            "NATS_PASSWORD": "not-the-password",
            "FARM_AUTH_PORT": "0",
            "FARM_AUTH_CHECK_PORT": "0",
            "FARM_AUTH_METRICS_PORT": "0",
        },
    )
    try:
        said = auth.read_stderr_until("check NATS_USER and NATS_PASSWORD")
    finally:
        auth.stop()

    assert f"refused the login of NATS_USER='{FARM_USER[0]}'" in said
    assert "not-the-password" not in said
