"""Typed domain errors, each carrying the gRPC status code it maps to; each code's HTTP status."""

from collections.abc import Mapping
from types import MappingProxyType

import grpc

HTTP_STATUS_OF_CODE: Mapping[grpc.StatusCode, int] = MappingProxyType(
    {
        grpc.StatusCode.OK: 200,
        grpc.StatusCode.CANCELLED: 499,
        grpc.StatusCode.UNKNOWN: 500,
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.DEADLINE_EXCEEDED: 504,
        grpc.StatusCode.NOT_FOUND: 404,
        grpc.StatusCode.ALREADY_EXISTS: 409,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.FAILED_PRECONDITION: 400,
        grpc.StatusCode.ABORTED: 409,
        grpc.StatusCode.OUT_OF_RANGE: 400,
        grpc.StatusCode.UNIMPLEMENTED: 501,
        grpc.StatusCode.INTERNAL: 500,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.DATA_LOSS: 500,
        grpc.StatusCode.UNAUTHENTICATED: 401,
    }
)
"""The HTTP status of each gRPC code, as the HTTP/JSON API answers it.

Envoy's transcoder's table (google/rpc/code.proto's): the edge's own refusals
(auth's check) and the console show a refusal with the status the API gives it.
"""


class FarmError(Exception):
    """A failure a caller should see as a gRPC status with this message."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(FarmError):
    """The request is malformed; the message starts with the offending field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotFound(FarmError):
    """The object does not exist, or belongs to another tenant."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"{kind} {object_id!r} not found")


class AlreadyExists(FarmError):
    """The object to create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class Unauthenticated(FarmError):
    """No credentials, or credentials that are not valid."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(FarmError):
    """Valid credentials without the scope the call needs."""

    code = grpc.StatusCode.PERMISSION_DENIED


class FailedPrecondition(FarmError):
    """The object is not in a state that allows the call."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ResourceExhausted(FarmError):
    """A limit or quota was reached."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(FarmError):
    """A part the call needs is down; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(FarmError):
    """The work did not finish within its time limit."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Internal(FarmError):
    """A fault of the farm itself (a bug, a broken part), not of the caller's request."""

    code = grpc.StatusCode.INTERNAL
