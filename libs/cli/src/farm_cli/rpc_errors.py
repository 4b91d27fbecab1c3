"""How a failed gRPC call ends a command: its status, exit code and error text.

Only the commands that call the farm import this (and with it grpc).
"""

import grpc

from farm_cli.exit_codes import ExitCode

CONNECTION_HINT = "is the farm running? Start it with `make run` (or `farm up`), or set FARM_URL"
AUTH_CODES = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


def rpc_status(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """The status code and message of a failed call (UNKNOWN and its text if it has none)."""
    if isinstance(error, grpc.Call):
        return error.code(), error.details() or str(error)
    return grpc.StatusCode.UNKNOWN, str(error)


def item_failure(error: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """rpc_status of one item's call in a bulk command.

    Re-raises a refused key's error: every other item would meet it too.
    """
    code, details = rpc_status(error)
    if code in AUTH_CODES:
        raise error
    return code, details


def exit_code_of(error: grpc.RpcError) -> ExitCode:
    """The exit code of a command ended by `error`."""
    code, _ = rpc_status(error)
    return ExitCode.AUTH if code in AUTH_CODES else ExitCode.ERROR


def rpc_error_text(error: grpc.RpcError) -> str:
    """`error: <STATUS>: <message>`, with a hint when the farm could not be reached."""
    code, details = rpc_status(error)
    text = f"error: {code.name}: {details}"
    if code is grpc.StatusCode.UNAVAILABLE and _unreachable(details):
        text += f"\nhint: {CONNECTION_HINT}"
    return text


def _unreachable(details: str) -> bool:
    # gRPC's own text when no connection to the farm could be made; a status the farm
    # sent may name a refused connection of its own (storage's to S3), and the farm runs.
    return details.lower().startswith("failed to connect to all addresses")
