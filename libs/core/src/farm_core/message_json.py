"""Messages as the farm's HTTP API writes them in JSON: whole numbers without a `.0`.

protobuf's Python JSON writes a double (a `seconds`, a number in a result's `json`,
a google.protobuf.Value) as `0.0`; the HTTP API, through Envoy's transcoder, as `0`.
The CLI and the console print what the API would. (The SDK, which does not depend
on farm_core, has its copy in browserfarm.results, held to this one by a test.)
"""

from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

# Beyond 2**53 a double no longer holds every whole number; Envoy writes those in exponent form.
EXACT_WHOLE_NUMBERS = 2**53


def whole_numbers(value: object) -> object:
    """`value` with each whole-valued float as an int: `0` and `3`, as Envoy's JSON has them."""
    if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_WHOLE_NUMBERS:
        return int(value)
    if isinstance(value, dict):
        return {key: whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [whole_numbers(item) for item in value]
    return value


def message_dict(message: Message, *, every_field: bool = False) -> dict[str, Any]:
    """`message` as the API's JSON object (lowerCamelCase names); `every_field`: unset ones too."""
    fields = json_format.MessageToDict(message, always_print_fields_with_no_presence=every_field)
    written = whole_numbers(fields)
    assert isinstance(written, dict)
    return written
