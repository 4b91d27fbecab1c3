"""The outcomes an audit record carries, as its filters name them: OK or a gRPC status code name.

Shared by auth's ListAuditRecords and `farm audit --outcome` (which checks before calling);
protobuf only, so the CLI loads no gRPC for it.
"""

from google.rpc import code_pb2  # type: ignore[import-untyped]

AUDIT_OUTCOMES: frozenset[str] = frozenset(code_pb2.Code.keys())


def audit_outcome(text: str) -> str | None:
    """The outcome a filter's `text` names, in any case ("" for none); None if it names none."""
    outcome = text.strip().upper()
    return outcome if not outcome or outcome in AUDIT_OUTCOMES else None


def unknown_outcome_message(text: str) -> str:
    """Why `text` is no outcome, as auth and `farm audit` both say it."""
    return f"must be OK or a gRPC status code name, got {text!r}"
