"""How the farm's services reach each other over gRPC: plaintext, or mutual TLS.

With FARM_INTERNAL_TLS_CERT, FARM_INTERNAL_TLS_KEY and FARM_INTERNAL_TLS_CA set,
every service serves only TLS and asks each caller for a certificate signed by
that CA, and every internal client (agent → storage, storage → auth, the
launcher's health probes) presents the same kind of certificate.
"""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from farm_core.tracing import client_interceptors

ChannelOptions = Sequence[tuple[str, int | str]]

# gRPC's own backoff between tries to reach a service that went away grows to 120 s,
# and a call made meanwhile fails at once (UNAVAILABLE) though the service is back:
# after a restart a caller would miss it for minutes. A try a second costs nothing.
RECONNECT_OPTIONS: ChannelOptions = (("grpc.max_reconnect_backoff_ms", 1000),)


@dataclass(frozen=True)
class InternalTls:
    """The PEM certificate chain and key this process presents, and the CA it trusts."""

    cert_chain: bytes
    private_key: bytes
    ca: bytes

    @classmethod
    def load(cls, cert: Path, key: Path, ca: Path) -> "InternalTls":
        """Reads the three PEM files; OSError names the setting whose file is unreadable."""
        contents = []
        for setting, path in (
            ("FARM_INTERNAL_TLS_CERT", cert),
            ("FARM_INTERNAL_TLS_KEY", key),
            ("FARM_INTERNAL_TLS_CA", ca),
        ):
            try:
                contents.append(path.read_bytes())
            except OSError as error:
                raise OSError(f"{setting}: cannot read {path}: {error.strerror}") from error
        return cls(*contents)

    def server_credentials(self) -> grpc.ServerCredentials:
        """TLS that refuses callers without a certificate from the CA."""
        return grpc.ssl_server_credentials(
            [(self.private_key, self.cert_chain)],
            root_certificates=self.ca,
            require_client_auth=True,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """TLS that checks the server against the CA and presents this certificate."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca,
            private_key=self.private_key,
            certificate_chain=self.cert_chain,
        )


def add_port(server: grpc.aio.Server, address: str, tls: InternalTls | None) -> int:
    """Listens on `address` (TLS with `tls`); the port bound, 0 if it could not bind."""
    if tls is None:
        return int(server.add_insecure_port(address))
    return int(server.add_secure_port(address, tls.server_credentials()))


def channel_target(addresses: str) -> tuple[str, ChannelOptions]:
    """GRPC's target and options for "host:port", or for replicas as "ip:port,ip:port".

    Replicas are called round robin, skipping those that do not answer. They must be
    IP addresses (a host name that resolves to several addresses is one entry).
    """
    entries = [entry.strip() for entry in addresses.split(",") if entry.strip()]
    if len(entries) <= 1:
        return (entries[0] if entries else addresses), ()
    scheme = ""
    for entry in entries:
        host = entry.rpartition(":")[0].strip("[]")
        try:
            version = ipaddress.ip_address(host).version
        except ValueError:
            raise ValueError(
                f"{entry!r}: several addresses must be IP addresses (ip:port, [ip6]:port)"
            ) from None
        if scheme not in ("", f"ipv{version}"):
            raise ValueError(f"{addresses!r}: mixes IPv4 and IPv6 addresses")
        scheme = f"ipv{version}"
    return f"{scheme}:{','.join(entries)}", (("grpc.lb_policy_name", "round_robin"),)


def aio_channel(
    address: str, tls: InternalTls | None, options: ChannelOptions = ()
) -> grpc.aio.Channel:
    """An asyncio channel to another service (TLS with `tls`), its calls traced.

    `address` may name several replicas (see `channel_target`). A service that went
    away is tried again every second (RECONNECT_OPTIONS).
    """
    target, balancing = channel_target(address)
    options = (*RECONNECT_OPTIONS, *options, *balancing)
    if tls is None:
        return grpc.aio.insecure_channel(
            target, options=options, interceptors=client_interceptors()
        )
    return grpc.aio.secure_channel(
        target, tls.channel_credentials(), options=options, interceptors=client_interceptors()
    )


def sync_channel(address: str, tls: InternalTls | None) -> grpc.Channel:
    """A blocking channel to a service (TLS with `tls`), for probes and tools."""
    if tls is None:
        return grpc.insecure_channel(address)
    return grpc.secure_channel(address, tls.channel_credentials())
