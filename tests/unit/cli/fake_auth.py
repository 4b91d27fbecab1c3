"""The fake auth service: its public RPCs, and the edge check Envoy's ext_authz asks.

GOOD_KEY passes (with an identity header), CHECK_FAILS_KEY makes the check fail,
CHECK_HANGS_KEY is never answered, OVER_LIMIT_KEY is refused with 429 as the auth
service refuses it, any other key is refused with 401.
"""

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_auth.authz import CONTENT_TYPE_HEADER, Verdict, denied, limited
from farm_auth.check_http import http_answer
from tests.unit.cli.fake_calls import Calls

GOOD_KEY = "bf_good-key"
# A key whose check fails (the auth service errs), as when it is down.
CHECK_FAILS_KEY = "bf_check-fails"
# A key whose check is never answered: the fake holds it until the test lets go, past
# Envoy's 2 s check timeout, then closes the connection.
CHECK_HANGS_KEY = "bf_check-hangs"
# A key over its rate limit: refused as the auth service refuses it.
OVER_LIMIT_KEY = "bf_over-limit"
IDENTITY_FOR_GOOD_KEY = "identity-token-for-good-key"


@dataclass(frozen=True)
class CheckSeen:
    """One check Envoy asked the fake auth: the method, the path, the headers and the body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


def fake_verdict(authorization: str | None, *, grpc_caller: bool) -> Verdict | None:
    """The fake auth's decision on a key; None: the check fails."""
    if authorization == f"Bearer {CHECK_FAILS_KEY}":
        return None
    if authorization == f"Bearer {OVER_LIMIT_KEY}":
        return limited("API key over-limit is over its rate limit", 1.5, grpc_caller=grpc_caller)
    if authorization == f"Bearer {GOOD_KEY}":
        return Verdict(code=0, identity_token=IDENTITY_FOR_GOOD_KEY)
    return denied("invalid API key", grpc_caller=grpc_caller)


def _check_handler(calls: "Calls") -> type[BaseHTTPRequestHandler]:
    class CheckHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/healthz":
                self._send(200, {}, b"ok\n")
                return
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen = CheckSeen(self.command, self.path, headers, body)
            calls.seen.append(("Check", seen, headers))
            grpc_caller = headers.get(CONTENT_TYPE_HEADER, "").startswith("application/grpc")
            if headers.get("authorization") == f"Bearer {CHECK_HANGS_KEY}":
                calls.hung_check_released.wait(timeout=60)
                # Envoy gave up on this check long ago: it gets no answer at all.
                self.close_connection = True
                return
            verdict = fake_verdict(headers.get("authorization"), grpc_caller=grpc_caller)
            if verdict is None:
                self._send(500, {}, b"the key store is unreachable")
                return
            answer = http_answer(verdict)
            sent = {name.lower(): value for name, value in answer.headers.items()}
            self._send(answer.status, sent, bytes(answer.body or b""))  # type: ignore[arg-type]

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                if name.lower() not in ("content-length", "content-type"):
                    self.send_header(name, value)
            if "content-type" in headers:
                self.send_header("content-type", headers["content-type"])
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        # The names http.server dispatches each method to.
        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer  # noqa: N815

    return CheckHandler


def start_fake_check(calls: "Calls", port: int) -> ThreadingHTTPServer:
    """The fake auth's edge check, served over HTTP in a thread of its own."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _check_handler(calls))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class FakeAuth(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def WhoAmI(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("WhoAmI", request, context)
        metadata = dict(context.invocation_metadata())
        return auth_pb2.WhoAmIResponse(
            tenant="acme", key_id=metadata.get("x-farm-identity", ""), scopes=["admin"]
        )

    def CreateApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("CreateApiKey", request, context)
        key = auth_pb2.ApiKey(id="key1", name=request.name, scopes=request.scopes)
        return auth_pb2.CreateApiKeyResponse(api_key=key, secret="bf_new-secret")

    def ListApiKeys(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("ListApiKeys", request, context)
        return auth_pb2.ListApiKeysResponse(api_keys=[auth_pb2.ApiKey(id="key1")])

    def RevokeApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("RevokeApiKey", request, context)
        return auth_pb2.ApiKey(id=request.id)

    def RevokeCredential(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("RevokeCredential", request, context)
        return auth_pb2.RevokedCredential(id=request.id, subject=request.subject)

    def RotateApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("RotateApiKey", request, context)
        key = auth_pb2.ApiKey(id=request.id)
        return auth_pb2.CreateApiKeyResponse(api_key=key, secret="bf_rotated-secret")

    def UpdateApiKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("UpdateApiKey", request, context)
        return auth_pb2.ApiKey(id=request.id)

    def GetTenant(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("GetTenant", request, context)
        return auth_pb2.Tenant(name=request.name)

    def UpdateTenantLimits(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.calls.record("UpdateTenantLimits", request, context)
        return auth_pb2.Tenant(name=request.name)
