"""Mutual TLS between the services: settings, the launcher's certificate, Envoy's clusters."""

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import ValidationError

from farm_cli.launcher.config import FarmConfig, find_project_root
from farm_cli.launcher.envoy import Endpoint, EnvoySettings, render_envoy_config
from farm_cli.launcher.services import SharedSettings, common_env
from farm_cli.launcher.tls import (
    RENEW_BEFORE,
    load_or_create_internal_tls,
    load_or_create_local_tls,
)
from farm_cli.main import build_parser
from farm_core.settings import FarmSettings
from farm_core.transport import InternalTls

ROOT = find_project_root(Path(__file__).parent)
TEMPLATE = ROOT / "envoy" / "envoy.yaml.j2"


def test_the_internal_certificate_serves_and_calls_and_shares_envoys_ca(tmp_path: Path) -> None:
    internal = load_or_create_internal_tls(tmp_path)
    edge = load_or_create_local_tls(tmp_path)
    assert internal.ca == edge.ca and internal.ca is not None
    assert internal.cert != edge.cert
    ca = x509.load_pem_x509_certificate(internal.ca.read_bytes())
    certificate = x509.load_pem_x509_certificate(internal.cert.read_bytes())
    certificate.verify_directly_issued_by(ca)
    usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usage) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    edge_usage = (
        x509.load_pem_x509_certificate(edge.cert.read_bytes())
        .extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        .value
    )
    assert list(edge_usage) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_the_internal_certificate_is_kept_then_renewed_near_its_end(tmp_path: Path) -> None:
    first = load_or_create_internal_tls(tmp_path)
    pem = first.cert.read_bytes()
    assert load_or_create_internal_tls(tmp_path).cert.read_bytes() == pem
    ends = x509.load_pem_x509_certificate(pem).not_valid_after_utc
    load_or_create_internal_tls(tmp_path, now=ends - RENEW_BEFORE + dt.timedelta(minutes=1))
    assert first.cert.read_bytes() != pem


def test_a_new_ca_issues_every_certificate_again(tmp_path: Path) -> None:
    load_or_create_local_tls(tmp_path)
    load_or_create_internal_tls(tmp_path)
    (tmp_path / "ca-key.pem").unlink()
    internal = load_or_create_internal_tls(tmp_path)
    assert internal.ca is not None
    new_ca = x509.load_pem_x509_certificate(internal.ca.read_bytes())
    # Envoy's certificate from the old CA is gone, not kept beside the new CA.
    assert not (tmp_path / "server.pem").exists()
    edge = load_or_create_local_tls(tmp_path)
    for files in (internal, edge):
        certificate = x509.load_pem_x509_certificate(files.cert.read_bytes())
        certificate.verify_directly_issued_by(new_ca)


def test_settings_need_all_three_internal_tls_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FARM_INTERNAL_TLS_CERT", "/certs/internal.pem")
    monkeypatch.setenv("FARM_INTERNAL_TLS_CA", "/certs/ca.pem")
    with pytest.raises(ValidationError, match="missing FARM_INTERNAL_TLS_KEY"):
        FarmSettings()
    monkeypatch.delenv("FARM_INTERNAL_TLS_CERT")
    monkeypatch.delenv("FARM_INTERNAL_TLS_CA")
    assert FarmSettings().internal_tls() is None


def test_an_unreadable_internal_tls_file_names_its_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = load_or_create_internal_tls(tmp_path)
    assert files.ca is not None
    monkeypatch.setenv("FARM_INTERNAL_TLS_CERT", str(files.cert))
    monkeypatch.setenv("FARM_INTERNAL_TLS_KEY", str(tmp_path / "absent-key.pem"))
    monkeypatch.setenv("FARM_INTERNAL_TLS_CA", str(files.ca))
    with pytest.raises(OSError, match=r"FARM_INTERNAL_TLS_KEY: cannot read .*absent-key\.pem"):
        FarmSettings().internal_tls()
    monkeypatch.setenv("FARM_INTERNAL_TLS_KEY", str(files.key))
    loaded = FarmSettings().internal_tls()
    assert loaded == InternalTls(
        files.cert.read_bytes(), files.key.read_bytes(), files.ca.read_bytes()
    )


def test_every_service_is_told_the_internal_files_only_when_they_exist(tmp_path: Path) -> None:
    config = FarmConfig(root=ROOT, home=tmp_path)
    plain = common_env(config, SharedSettings("nats://127.0.0.1:1", "secret"))
    assert not any(name.startswith("FARM_INTERNAL_TLS") for name in plain)
    files = load_or_create_internal_tls(tmp_path / "tls")
    secure = common_env(config, SharedSettings("nats://127.0.0.1:1", "secret", files))
    assert secure["FARM_INTERNAL_TLS_CERT"] == str(files.cert)
    assert secure["FARM_INTERNAL_TLS_KEY"] == str(files.key)
    assert secure["FARM_INTERNAL_TLS_CA"] == str(files.ca)


def envoy_settings(**changes: Any) -> EnvoySettings:
    values: dict[str, Any] = {
        "listen_port": 18080,
        "admin_port": 19901,
        "descriptor_path": ROOT / "envoy" / "farm.binpb",
        "upstreams": {
            name: [Endpoint("127.0.0.1", 17101)] for name in ("auth", "storage", "scheduler")
        },
    }
    values.update(changes)
    return EnvoySettings(**values)


def clusters(rendered: str) -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = yaml.safe_load(rendered)["static_resources"]["clusters"]
    return loaded


def test_envoy_calls_the_services_in_plaintext_without_internal_tls() -> None:
    for cluster in clusters(render_envoy_config(TEMPLATE, envoy_settings())):
        assert "transport_socket" not in cluster


def test_envoy_calls_every_service_with_its_client_certificate() -> None:
    rendered = render_envoy_config(
        TEMPLATE,
        envoy_settings(
            upstream_cert_path=Path("/certs/internal.pem"),
            upstream_key_path=Path("/certs/internal-key.pem"),
            upstream_ca_path=Path("/certs/ca.pem"),
        ),
    )
    for cluster in clusters(rendered):
        config = cluster["transport_socket"]["typed_config"]
        assert config["@type"].endswith("UpstreamTlsContext")
        context = config["common_tls_context"]
        assert context["alpn_protocols"] == ["h2"]
        assert context["tls_certificates"] == [
            {
                "certificate_chain": {"filename": "/certs/internal.pem"},
                "private_key": {"filename": "/certs/internal-key.pem"},
            }
        ]
        assert context["validation_context"] == {"trusted_ca": {"filename": "/certs/ca.pem"}}


def test_envoy_settings_refuse_part_of_the_upstream_tls() -> None:
    with pytest.raises(ValueError, match="certificate, its key and the CA"):
        envoy_settings(upstream_cert_path=Path("/certs/internal.pem"))


def test_envoy_config_command_takes_the_upstream_tls_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    output = tmp_path / "envoy.yaml"
    flags = ["--upstream-tls-cert", "/c.pem", "--upstream-tls-key", "/k.pem"]
    args = build_parser().parse_args(
        ["envoy-config", *flags, "--upstream-tls-ca", "/ca.pem", "-o", str(output)]
    )
    assert args.run(args) == 0
    assert all("transport_socket" in cluster for cluster in clusters(output.read_text()))
    partial = build_parser().parse_args(["envoy-config", *flags])
    with pytest.raises(Exception, match="go together"):
        partial.run(partial)
