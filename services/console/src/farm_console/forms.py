"""What the console's forms share: numbers read strictly, and a refusal placed at its field.

A refused form is shown again with what was entered and the refusal next to the field
it names: the farm's messages start with the field ("timeoutMs: must be ..."), and
the console's own checks of the form name theirs the same way.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.datastructures import FormData

from farm_console.farm import FarmError
from farm_core.errors import HTTP_STATUS_OF_CODE

WHOLE_NUMBER = re.compile(r"-?[0-9]+")
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class FormError(Exception):
    """A form field the console cannot send as it is, named as the farm names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class Refusal:
    """A refused form: the form field the message names ('' for none) and the message."""

    field: str
    message: str


def refusal(message: str, fields: Mapping[str, str]) -> Refusal:
    """`message` ("field: why") placed at the form field that `fields` maps its field to."""
    named = message.split(":", 1)[0].strip()
    return Refusal(fields.get(named, ""), message)


def whole_number(text: str, field: str, limit: int = INT64_MAX) -> int | None:
    """`text` as a whole number (None when empty); FormError for anything else.

    The farm checks the number's range; this only refuses what cannot be sent at all
    (a fraction, a word, more than the field's integer holds) instead of dropping it.
    """
    text = text.strip()
    if not text:
        return None
    if not WHOLE_NUMBER.fullmatch(text):
        raise FormError(field, f"must be a whole number, got {text!r}")
    if abs(int(text)) > limit:
        raise FormError(field, f"is out of range, got {text}")
    return int(text)


def entered(form: FormData) -> dict[str, str]:
    """What was entered in `form`'s single-valued fields, to fill the form in again."""
    return {name: str(value) for name, value in form.items()}


def form_status(refused: Exception) -> int:
    """The HTTP status of a refused form: the farm's refusal's, else 400.

    As the HTTP API gives the refusal's code (403 for a missing scope, 429 for a quota,
    ...); the console's own checks of a field are 400.
    """
    if isinstance(refused, FarmError):
        return HTTP_STATUS_OF_CODE[refused.code]
    return 400
