"""The idempotencyKey of a create call, one contract for tasks and API keys (docs/api.md)."""

from farm_core.errors import InvalidArgument

FIELD = "idempotencyKey"
MAX_IDEMPOTENCY_KEY_CHARS = 128


def check_idempotency_key(key: str) -> str:
    """`key` if it is at most 128 characters ('' for none); InvalidArgument if longer."""
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgument(
            FIELD, f"must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters, got {len(key)}"
        )
    return key


def used_otherwise(key: str, holder: str, request: str = "request") -> InvalidArgument:
    """The refusal of `key` sent with another `request` than the one that made `holder`.

    A key names one request, not any request: `holder` ("task t_…", "API key key_…")
    keeps it, and the caller hears which object holds it.
    """
    return InvalidArgument(FIELD, f"{key!r} was used by {holder} with a different {request}")
