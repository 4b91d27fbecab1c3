"""The task form's screenshot and PDF options, read as the CLI's flags read them.

Transparent background and clip go with a screenshot; margin, pages, CSS page size and
scale with a PDF. An option of the other action is refused at its field, as
`farm task create --margin` is with `--screenshot`. The console only refuses what it
cannot send (a clip that is not four numbers, a scale that is no number); the farm
checks the rest, and its refusal names the field (`pdf.margin.top`), shown at the
form's field by FORM_FIELDS.
"""

import math
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import FormData

from farm_console.forms import FormError
from farm_core.capture_options import margin_sides

# A form field per option, with the TaskSpec JSON field it fills and the action it goes with.
OPTIONS: Mapping[str, tuple[str, str]] = {
    "omitBackground": ("screenshot", "omitBackground"),
    "clip": ("screenshot", "clip"),
    "margin": ("pdf", "margin"),
    "pageRanges": ("pdf", "pageRanges"),
    "preferCssPageSize": ("pdf", "preferCssPageSize"),
    "scale": ("pdf", "scale"),
}
# What the form calls each option, in a refusal of it with the other action.
TITLES = {
    "omitBackground": "Transparent background",
    "clip": "Clip",
    "margin": "Margin",
    "pageRanges": "Pages",
    "preferCssPageSize": "CSS page size",
    "scale": "Scale",
}
_SIDES = ("top", "right", "bottom", "left")
_CLIP = ("x", "y", "width", "height")
FORM_FIELDS: Mapping[str, str] = {
    **{f"{action}.{field}": name for name, (action, field) in OPTIONS.items()},
    **{f"pdf.margin.{side}": "margin" for side in _SIDES},
    **{f"screenshot.clip.{name}": "clip" for name in _CLIP},
}
"""The form field a refusal's field (as the farm names it) is shown at."""


def capture_options(form: FormData, action: str) -> dict[str, Any]:
    """The options of `action` the form sets, as TaskSpec JSON; FormError for another's."""
    options: dict[str, Any] = {}
    for name, (goes_with, field) in OPTIONS.items():
        text = str(form.get(name, "")).strip()
        if not text:
            continue
        if goes_with != action:
            raise FormError(
                f"{goes_with}.{field}",
                f"{TITLES[name]} only goes with {goes_with}, not with {action}",
            )
        options[field] = _value(name, text)
    return options


def _value(name: str, text: str) -> Any:
    if name in ("omitBackground", "preferCssPageSize"):
        return True
    if name == "margin":
        sides = margin_sides(text)
        if sides is None:
            raise FormError("pdf.margin", f"must be 1 to 4 comma-separated lengths, got {text!r}")
        return {side: length for side, length in zip(_SIDES, sides, strict=True) if length}
    if name == "clip":
        values = [_number(part) for part in text.split(",")]
        if len(values) != 4 or None in values:
            raise FormError(
                "screenshot.clip", f"must be X,Y,WIDTH,HEIGHT in CSS pixels, got {text!r}"
            )
        return dict(zip(_CLIP, values, strict=True))
    if name == "scale":
        scale = _number(text)
        if scale is None:
            raise FormError("pdf.scale", f"must be a number, got {text!r}")
        return scale
    return text


def _number(text: str) -> float | None:
    """`text` as a finite number, else None."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None
