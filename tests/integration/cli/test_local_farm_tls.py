"""`farm up --tls`: Envoy serves only TLS, with a local CA made once or the operator's own."""

import ssl
import stat
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.tls import TlsFiles, load_or_create_local_tls
from farm_cli.target import FarmTarget, farm_target
from tests.conftest import S3Server
from tests.integration.cli.conftest import on_session_s3

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def plain_s3_config(infra_config: FarmConfig, seaweedfs: S3Server) -> FarmConfig:
    """The farm on the session's SeaweedFS: TLS is the edge's (and the services'), not S3's."""
    return on_session_s3(infra_config, seaweedfs)


def test_tls_farm_serves_https_with_its_local_ca_kept_across_restarts(
    plain_s3_config: FarmConfig,
) -> None:
    config = replace(plain_s3_config, tls=True)
    with LocalFarm(config) as farm:
        files = farm.tls_files
        assert files is not None and files.ca is not None
        assert farm.envoy_url.startswith("https://")
        assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
        first_ca = files.ca.read_bytes()
        trusting = ssl.create_default_context(cafile=str(files.ca))
        # Envoy answers over TLS (503: no services run in this farm).
        healthz = httpx.get(f"{farm.envoy_url}/healthz", verify=trusting, timeout=5)
        assert healthz.status_code == 503
        plain = farm.envoy_url.replace("https://", "http://")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{plain}/healthz", timeout=5)
        # The CLI finds this https:// farm and its CA through FARM_HOME alone.
        found = farm_target({"FARM_HOME": str(farm.home)}, Path("/"))
        assert found == FarmTarget(farm.envoy_url.removeprefix("https://"), True, str(files.ca))
    assert not (config.home / "edge.json").exists()
    with LocalFarm(config) as farm:
        assert farm.tls_files is not None and farm.tls_files.ca is not None
        assert farm.tls_files.ca.read_bytes() == first_ca


def test_tls_farm_serves_the_operators_own_certificate(
    plain_s3_config: FarmConfig, tmp_path: Path
) -> None:
    own = load_or_create_local_tls(tmp_path / "operator")
    assert own.ca is not None
    config = replace(plain_s3_config, tls=True, tls_cert=own.cert, tls_key=own.key)
    with LocalFarm(config) as farm:
        assert farm.tls_files == TlsFiles(cert=own.cert, key=own.key)
        healthz = f"{farm.envoy_url}/healthz"
        trusting = ssl.create_default_context(cafile=str(own.ca))
        assert httpx.get(healthz, verify=trusting, timeout=5).status_code == 503
        # Not a certificate of the farm's own CA (kept for the services' mutual TLS).
        local_ca = ssl.create_default_context(cafile=str(config.tls_home / "ca.pem"))
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(healthz, verify=local_ca, timeout=5)
