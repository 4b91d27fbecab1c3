"""TLS of the local farm: the local CA, the flags and variables, the banner.

How Envoy is configured with the certificates: test_envoy_tls.py.
"""

import argparse
import datetime as dt
import ipaddress
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from farm_cli.commands.up import tls_lines
from farm_cli.launcher.config import FarmConfig, find_project_root
from farm_cli.launcher.farm import LocalFarm
from farm_cli.launcher.tls import (
    RENEW_BEFORE,
    TlsFiles,
    load_or_create_internal_tls,
    load_or_create_local_tls,
)
from farm_cli.main import build_parser, main

ROOT = find_project_root(Path(__file__).parent)


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


@pytest.mark.parametrize("load", [load_or_create_local_tls, load_or_create_internal_tls])
def test_a_certificate_is_kept_then_issued_again_by_the_same_ca_near_its_end(
    tmp_path: Path, load: Callable[..., TlsFiles]
) -> None:
    first = load(tmp_path)
    assert first.ca is not None
    ca_pem, cert_pem = first.ca.read_bytes(), first.cert.read_bytes()
    assert load(tmp_path) == first and first.cert.read_bytes() == cert_pem
    old = x509.load_pem_x509_certificate(cert_pem)
    later = old.not_valid_after_utc - RENEW_BEFORE + dt.timedelta(minutes=1)
    renewed = load(tmp_path, now=later)
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


def test_banner_names_the_ca_for_curl_and_the_cli(tmp_path: Path) -> None:
    text = "\n".join(tls_lines(load_or_create_local_tls(tmp_path / "tls")))
    assert str(tmp_path / "tls" / "ca.pem") in text and "FARM_CA_FILE=" in text


def test_banner_names_the_services_certificate_when_they_speak_mutual_tls(tmp_path: Path) -> None:
    edge = load_or_create_local_tls(tmp_path / "tls")
    internal = load_or_create_internal_tls(tmp_path / "tls")
    assert "mutual TLS" not in "\n".join(tls_lines(edge))
    text = "\n".join(tls_lines(edge, internal))
    assert f"services: mutual TLS with {internal.cert}" in text


def test_up_with_a_certificate_without_its_key_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Options that do not go together exit 2 (docs/cli.md), before anything is made.
    monkeypatch.setenv("FARM_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FARM_ENVOY_TLS_CERT", raising=False)
    monkeypatch.delenv("FARM_ENVOY_TLS_KEY", raising=False)

    assert main(["up", "--port-offset", "3000", "--tls-cert", str(tmp_path / "c.pem")]) == 2

    assert "(--tls-cert, --tls-key) go together" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()
