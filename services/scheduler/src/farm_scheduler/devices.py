"""The device names a task or session may emulate: those of Playwright's device list.

The scheduler has no Playwright, so the names are kept in device_names.txt, one a
line, written from the installed Playwright's `devices`; a unit test compares the
two, so an upgrade that changes the list fails there and not on the agents.
"""

import difflib
import functools
from importlib import resources

from farm_core.errors import InvalidArgument
from farm_scheduler.field_checks import check_length

MAX_DEVICE_CHARS = 100


@functools.cache
def device_names() -> frozenset[str]:
    """Playwright's device names (`iPhone 13`, `Pixel 7 landscape`, ...)."""
    text = resources.files(__package__).joinpath("device_names.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line)


def check_device(device: str, field: str = "device") -> None:
    """Raises InvalidArgument(field) unless `device` is empty or a device Playwright knows."""
    check_length(field, device, MAX_DEVICE_CHARS)
    if not device or device in device_names():
        return
    named = sorted(device_names())
    same_but_case = [name for name in named if name.casefold() == device.casefold()]
    close = same_but_case or difflib.get_close_matches(device, named, n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]!r}?)" if close else ", e.g. 'iPhone 13' or 'Pixel 7'"
    raise InvalidArgument(field, f"{device!r} is not a device Playwright knows{hint}")
