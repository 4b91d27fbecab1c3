"""Mutual TLS between the services: the launcher's certificate and the services' settings."""

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from pydantic import ValidationError

from farm_cli.launcher.config import FarmConfig, find_project_root
from farm_cli.launcher.services import SharedSettings, common_env
from farm_cli.launcher.tls import (
    load_or_create_internal_tls,
    load_or_create_local_tls,
)
from farm_core.settings import FarmSettings
from farm_core.transport import InternalTls
from tests.helpers import TEST_GRANT_KEY, TEST_IDENTITY_KEY

ROOT = find_project_root(Path(__file__).parent)


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
    plain = common_env(
        config, SharedSettings("nats://127.0.0.1:1", TEST_IDENTITY_KEY, TEST_GRANT_KEY)
    )
    assert not any(name.startswith("FARM_INTERNAL_TLS") for name in plain)
    files = load_or_create_internal_tls(tmp_path / "tls")
    secure = common_env(
        config, SharedSettings("nats://127.0.0.1:1", TEST_IDENTITY_KEY, TEST_GRANT_KEY, files)
    )
    assert secure["FARM_INTERNAL_TLS_CERT"] == str(files.cert)
    assert secure["FARM_INTERNAL_TLS_KEY"] == str(files.key)
    assert secure["FARM_INTERNAL_TLS_CA"] == str(files.ca)
