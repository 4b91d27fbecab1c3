"""Readiness probes of the farm's processes: gRPC health for services, admin /ready for Envoy."""

import functools
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from farm_cli.launcher.tls import TlsFiles
from farm_core.transport import InternalTls, sync_channel


def grpc_serving(address: str, tls: InternalTls | None = None, timeout: float = 1.0) -> bool:
    """Whether the gRPC server at host:port reports the overall service ("") SERVING.

    With `tls` the probe speaks mutual TLS, as the farm's services do when it is on.
    """
    with sync_channel(address, tls) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def http_ok(url: str, timeout: float = 1.0, context: ssl.SSLContext | None = None) -> bool:
    """Whether GET `url` answers 200 (over https with `context`, e.g. a client certificate)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def service_ready(address: str, health_path: str, files: TlsFiles | None) -> Callable[[], bool]:
    """The probe that says a service is ready: gRPC health, or GET of its `health_path`.

    With the farm's internal TLS (`files` with a CA), both speak it as the services do.
    """
    if not health_path:
        tls = InternalTls.load(files.cert, files.key, files.ca) if files and files.ca else None
        return functools.partial(grpc_serving, address, tls)
    if files is None or files.ca is None:
        return functools.partial(http_ok, f"http://{address}{health_path}")
    # The service asks for the farm's client certificate, as the others do.
    context = ssl.create_default_context(cafile=files.ca)
    context.load_cert_chain(files.cert, files.key)
    return functools.partial(http_ok, f"https://{address}{health_path}", context=context)
