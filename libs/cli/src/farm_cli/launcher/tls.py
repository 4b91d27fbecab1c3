"""The local farm's TLS: a CA, Envoy's server certificate and the services' mutual-TLS one.

All are made once under FARM_HOME/tls for 127.0.0.1, ::1 and localhost.
"""

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from farm_cli.launcher.credentials import write_private

CA_DAYS = 3650
SERVER_DAYS = 825
# A certificate this close to its end is issued again at the next start.
RENEW_BEFORE = dt.timedelta(days=30)
# The names the local farm is reached by; nothing else is put in its certificate.
SERVER_DNS_NAMES = ("localhost",)
SERVER_ADDRESSES = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class TlsFiles:
    """A server certificate (PEM chain) and its key; `ca` is the CA that signed it, if known."""

    cert: Path
    key: Path
    ca: Path | None = None

    def check(self) -> None:
        """Raises FileNotFoundError naming the first file that does not exist."""
        for path in (self.cert, self.key, self.ca):
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"TLS file {path} does not exist")


def load_or_create_local_tls(folder: Path, now: dt.datetime | None = None) -> TlsFiles:
    """The local CA and Envoy's server certificate under `folder`, created on first use.

    Keys are written with mode 0600. The CA is kept as long as it exists, so
    clients that trust ca.pem keep trusting the farm across restarts; the server
    certificate is issued again by that CA once it is within RENEW_BEFORE of its end.
    `now` (default: the current time) is when that is judged.
    """
    return load_or_issue(folder, "server", (ExtendedKeyUsageOID.SERVER_AUTH,), now=now)


def edge_tls_files(tls: bool, cert: Path | None, key: Path | None, folder: Path) -> TlsFiles | None:
    """Envoy's: the given certificate (checked to exist), the local CA's (made once), or None."""
    if not tls:
        return None
    if cert is not None and key is not None:
        files = TlsFiles(cert=cert, key=key)
        files.check()
        return files
    return load_or_create_local_tls(folder)


def load_or_create_internal_tls(folder: Path, now: dt.datetime | None = None) -> TlsFiles:
    """The certificate the local farm's services serve and call each other with (mutual TLS).

    Issued by the same local CA as Envoy's (made under `folder` if missing), for
    both server and client use, and renewed like it.
    """
    usages = (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)
    return load_or_issue(folder, "internal", usages, now=now)


def load_or_issue(
    folder: Path,
    stem: str,
    usages: tuple[x509.ObjectIdentifier, ...],
    names: x509.SubjectAlternativeName | None = None,
    now: dt.datetime | None = None,
) -> TlsFiles:
    """The certificate `stem`.pem and its key under `folder`, issued by the local CA.

    The CA is made under `folder` if missing. `names` default to the local farm's
    (SERVER_DNS_NAMES and SERVER_ADDRESSES).
    """
    now = dt.datetime.now(dt.UTC) if now is None else now
    files = TlsFiles(
        cert=folder / f"{stem}.pem", key=folder / f"{stem}-key.pem", ca=folder / "ca.pem"
    )
    ca_path, ca_key_path = folder / "ca.pem", folder / "ca-key.pem"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if ca_path.is_file() and ca_key_path.is_file():
        ca_cert = x509.load_pem_x509_certificate(ca_path.read_bytes())
        ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
        if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{ca_key_path} is not the local CA's EC key")
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, now)
        write_private(ca_key_path, _key_pem(ca_key))
        ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        # Whatever an earlier CA signed is worthless now.
        for earlier in folder.glob("*.pem"):
            if earlier not in (ca_path, ca_key_path) and not earlier.name.endswith("-key.pem"):
                earlier.unlink()
    if _still_good(files, now):
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _leaf_certificate(key, ca_key, ca_cert, usages, names or local_names(), now)
    write_private(files.key, _key_pem(key))
    files.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return files


def local_names() -> x509.SubjectAlternativeName:
    """The names the local farm is reached by: localhost, 127.0.0.1 and ::1."""
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in SERVER_DNS_NAMES]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in SERVER_ADDRESSES]
    return x509.SubjectAlternativeName(names)


def _still_good(files: TlsFiles, now: dt.datetime) -> bool:
    """Whether the server certificate and key exist and the certificate has time left."""
    if not (files.cert.is_file() and files.key.is_file()):
        return False
    certificate = x509.load_pem_x509_certificate(files.cert.read_bytes())
    return certificate.not_valid_after_utc - RENEW_BEFORE > now


def _ca_certificate(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "browserfarm local CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _leaf_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    usages: tuple[x509.ObjectIdentifier, ...],
    names: x509.SubjectAlternativeName,
    now: dt.datetime,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(names, critical=False)
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
