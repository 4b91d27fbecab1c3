"""Readiness probes of the farm's processes: gRPC health for services, admin /ready for Envoy."""

import ssl
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

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
