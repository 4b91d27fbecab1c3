"""`farm up --tls`: the launcher makes a local CA once and Envoy serves only TLS with it."""

import ssl
import stat
from dataclasses import replace

import httpx
import pytest

from farm_cli.launcher.config import FarmConfig
from farm_cli.launcher.farm import LocalFarm

pytestmark = pytest.mark.integration


def test_tls_farm_serves_https_with_its_local_ca_kept_across_restarts(
    infra_config: FarmConfig,
) -> None:
    config = replace(infra_config, tls=True)
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
    with LocalFarm(config) as farm:
        assert farm.tls_files is not None and farm.tls_files.ca is not None
        assert farm.tls_files.ca.read_bytes() == first_ca
