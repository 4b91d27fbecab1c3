"""TLS of the local farm: the local CA, the flags and variables, and Envoy's listener."""

import argparse
import datetime as dt
import ipaddress
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from farm_cli.commands.up import tls_lines
from farm_cli.launcher.config import FarmConfig, find_project_root
from farm_cli.launcher.envoy import Endpoint, EnvoySettings, render_envoy_config
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.tls import (
    RENEW_BEFORE,
    load_or_create_internal_tls,
    load_or_create_local_tls,
)
from farm_cli.main import build_parser

ROOT = find_project_root(Path(__file__).parent)
TEMPLATE = ROOT / "envoy" / "envoy.yaml.j2"


def test_local_ca_and_server_certificate_are_made_with_private_keys(tmp_path: Path) -> None:
    files = load_or_create_local_tls(tmp_path / "tls")
    assert files.ca is not None
    for key in (files.key, tmp_path / "tls" / "ca-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    server = x509.load_pem_x509_certificate(files.cert.read_bytes())
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]


def test_local_ca_is_made_once_and_reused(tmp_path: Path) -> None:
    first = load_or_create_local_tls(tmp_path)
    assert first.ca is not None
    ca_pem, cert_pem = first.ca.read_bytes(), first.cert.read_bytes()
    again = load_or_create_local_tls(tmp_path)
    assert again == first
    assert again.cert.read_bytes() == cert_pem
    assert first.ca.read_bytes() == ca_pem


def test_a_server_certificate_near_its_end_is_issued_again_by_the_same_ca(
    tmp_path: Path,
) -> None:
    first = load_or_create_local_tls(tmp_path)
    assert first.ca is not None
    ca_pem, cert_pem = first.ca.read_bytes(), first.cert.read_bytes()
    old = x509.load_pem_x509_certificate(cert_pem)
    later = old.not_valid_after_utc - RENEW_BEFORE + dt.timedelta(minutes=1)
    renewed = load_or_create_local_tls(tmp_path, now=later)
    assert renewed.ca is not None and renewed.ca.read_bytes() == ca_pem
    new = x509.load_pem_x509_certificate(renewed.cert.read_bytes())
    assert new.not_valid_after_utc > old.not_valid_after_utc
    new.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    assert stat.S_IMODE(renewed.key.stat().st_mode) == 0o600


def config(tmp_path: Path, environ: dict[str, str], **options: Any) -> FarmConfig:
    return FarmConfig.from_environment(
        cwd=ROOT, environ={"FARM_HOME": str(tmp_path), **environ}, **options
    )


def test_tls_is_off_by_default_and_on_with_the_flag(tmp_path: Path) -> None:
    plain = config(tmp_path, {})
    assert not plain.tls and plain.envoy_url.startswith("http://")
    secure = config(tmp_path, {}, tls=True)
    assert secure.tls and secure.envoy_url == f"https://127.0.0.1:{secure.ports.envoy}"
    assert secure.tls_cert is None and secure.tls_home == tmp_path / "tls"


def test_own_certificate_comes_from_the_environment(tmp_path: Path) -> None:
    given = config(tmp_path, {"FARM_ENVOY_TLS_CERT": "c.pem", "FARM_ENVOY_TLS_KEY": "k.pem"})
    assert given.tls
    assert (given.tls_cert, given.tls_key) == (ROOT / "c.pem", ROOT / "k.pem")


def test_flags_win_over_the_environment(tmp_path: Path) -> None:
    given = config(
        tmp_path,
        {"FARM_ENVOY_TLS_CERT": "c.pem", "FARM_ENVOY_TLS_KEY": "k.pem"},
        tls_cert=Path("/x/cert.pem"),
        tls_key=Path("/x/key.pem"),
    )
    assert (given.tls_cert, given.tls_key) == (Path("/x/cert.pem"), Path("/x/key.pem"))


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="FARM_ENVOY_TLS_CERT and FARM_ENVOY_TLS_KEY"):
        config(tmp_path, {"FARM_ENVOY_TLS_CERT": "c.pem"})


def test_up_parses_the_tls_flags() -> None:
    args = build_parser().parse_args(["up", "--tls-cert", "c.pem", "--tls-key", "k.pem"])
    assert isinstance(args, argparse.Namespace)
    assert (args.tls, args.tls_cert, args.tls_key) == (False, Path("c.pem"), Path("k.pem"))
    assert build_parser().parse_args(["up", "--tls"]).tls


def test_a_missing_own_certificate_fails_before_anything_starts(tmp_path: Path) -> None:
    farm = LocalFarm(
        FarmConfig(
            root=ROOT,
            home=tmp_path,
            tls=True,
            tls_cert=tmp_path / "absent.pem",
            tls_key=tmp_path / "absent-key.pem",
        )
    )
    with pytest.raises(FileNotFoundError, match=r"absent\.pem"):
        farm.start()
    assert farm.processes == {}


def settings(**changes: Any) -> EnvoySettings:
    values: dict[str, Any] = {
        "listen_port": 18080,
        "admin_port": 19901,
        "descriptor_path": ROOT / "envoy" / "farm.binpb",
        "upstreams": {name: [Endpoint("127.0.0.1", 17101)] for name in ("auth", "storage")}
        | {"scheduler": [Endpoint("127.0.0.1", 17103)]},
    }
    values.update(changes)
    return EnvoySettings(**values)


def listener_chain(rendered: str) -> dict[str, Any]:
    loaded = yaml.safe_load(rendered)
    (listener,) = loaded["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    assert isinstance(chain, dict)
    return chain


def test_listener_is_plain_without_a_certificate() -> None:
    assert "transport_socket" not in listener_chain(render_envoy_config(TEMPLATE, settings()))


def test_listener_serves_tls_with_alpn_h2_and_http11() -> None:
    chain = listener_chain(
        render_envoy_config(
            TEMPLATE,
            settings(tls_cert_path=Path("/certs/farm.pem"), tls_key_path=Path("/certs/key.pem")),
        )
    )
    socket = chain["transport_socket"]
    assert socket["name"] == "envoy.transport_sockets.tls"
    context = socket["typed_config"]["common_tls_context"]
    assert context["alpn_protocols"] == ["h2", "http/1.1"]
    assert context["tls_certificates"] == [
        {
            "certificate_chain": {"filename": "/certs/farm.pem"},
            "private_key": {"filename": "/certs/key.pem"},
        }
    ]


def test_envoy_settings_refuse_a_certificate_without_a_key() -> None:
    with pytest.raises(ValueError, match="TLS certificate needs its key"):
        settings(tls_cert_path=Path("/certs/farm.pem"))


def test_envoy_config_command_renders_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    output = tmp_path / "envoy.yaml"
    args = build_parser().parse_args(
        ["envoy-config", "--tls-cert", "/c.pem", "--tls-key", "/k.pem", "-o", str(output)]
    )
    assert args.run(args) == 0
    chain = listener_chain(output.read_text())
    assert chain["transport_socket"]["typed_config"]["common_tls_context"]["tls_certificates"]


def test_banner_names_the_ca_for_curl_and_the_cli(tmp_path: Path) -> None:
    text = "\n".join(tls_lines(load_or_create_local_tls(tmp_path / "tls")))
    assert str(tmp_path / "tls" / "ca.pem") in text and "FARM_CA_FILE=" in text


def test_banner_names_the_services_certificate_when_they_speak_mutual_tls(tmp_path: Path) -> None:
    edge = load_or_create_local_tls(tmp_path / "tls")
    internal = load_or_create_internal_tls(tmp_path / "tls")
    assert "mutual TLS" not in "\n".join(tls_lines(edge))
    text = "\n".join(tls_lines(edge, internal))
    assert f"services: mutual TLS with {internal.cert}" in text
