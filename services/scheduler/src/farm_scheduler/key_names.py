"""The key names a `press` step may use: those Playwright's `keyboard.press` accepts.

The agents press keys with Playwright, which knows the keys of its US keyboard layout
(playwright-core `src/server/usKeyboardLayout.ts`) and nothing else. The layout below
is that file's, transcribed; a unit test compares it with the one in the installed
Playwright, so an upgrade that changes it fails there and not on the agents. The names
are built from it as Playwright's `buildLayoutClosure` (`src/server/input.ts`) does.
"""

import difflib
import functools
from collections.abc import Mapping
from typing import NamedTuple


class KeyDefinition(NamedTuple):
    """One physical key of the layout: the key it types, shifted, and where it sits."""

    key: str
    shift_key: str = ""
    # 0: the main block; 1 and 2: left and right (Shift, Control...); 3: the numpad.
    location: int = 0


# Playwright's USKeyboardLayout, key code → definition, in its order.
US_KEYBOARD_LAYOUT: Mapping[str, KeyDefinition] = {
    "Escape": KeyDefinition("Escape"),
    **{f"F{number}": KeyDefinition(f"F{number}") for number in range(1, 13)},
    "Backquote": KeyDefinition("`", "~"),
    **{
        f"Digit{digit}": KeyDefinition(digit, shifted)
        for digit, shifted in zip("1234567890", "!@#$%^&*()", strict=True)
    },
    "Minus": KeyDefinition("-", "_"),
    "Equal": KeyDefinition("=", "+"),
    "Backslash": KeyDefinition("\\", "|"),
    "Backspace": KeyDefinition("Backspace"),
    "Tab": KeyDefinition("Tab"),
    **{f"Key{letter}": KeyDefinition(letter.lower(), letter) for letter in "QWERTYUIOP"},
    "BracketLeft": KeyDefinition("[", "{"),
    "BracketRight": KeyDefinition("]", "}"),
    "CapsLock": KeyDefinition("CapsLock"),
    **{f"Key{letter}": KeyDefinition(letter.lower(), letter) for letter in "ASDFGHJKL"},
    "Semicolon": KeyDefinition(";", ":"),
    "Quote": KeyDefinition("'", '"'),
    "Enter": KeyDefinition("Enter"),
    "ShiftLeft": KeyDefinition("Shift", location=1),
    **{f"Key{letter}": KeyDefinition(letter.lower(), letter) for letter in "ZXCVBNM"},
    "Comma": KeyDefinition(",", "<"),
    "Period": KeyDefinition(".", ">"),
    "Slash": KeyDefinition("/", "?"),
    "ShiftRight": KeyDefinition("Shift", location=2),
    "ControlLeft": KeyDefinition("Control", location=1),
    "MetaLeft": KeyDefinition("Meta", location=1),
    "AltLeft": KeyDefinition("Alt", location=1),
    "Space": KeyDefinition(" "),
    "AltRight": KeyDefinition("Alt", location=2),
    "AltGraph": KeyDefinition("AltGraph"),
    "MetaRight": KeyDefinition("Meta", location=2),
    "ContextMenu": KeyDefinition("ContextMenu"),
    "ControlRight": KeyDefinition("Control", location=2),
    **{
        name: KeyDefinition(name)
        for name in (
            "PrintScreen",
            "ScrollLock",
            "Pause",
            "PageUp",
            "PageDown",
            "Insert",
            "Delete",
            "Home",
            "End",
            "ArrowLeft",
            "ArrowUp",
            "ArrowRight",
            "ArrowDown",
            "AudioVolumeMute",
            "AudioVolumeDown",
            "AudioVolumeUp",
            "MediaTrackNext",
            "MediaTrackPrevious",
            "MediaPlayPause",
            "NumLock",
        )
    },
    "NumpadDivide": KeyDefinition("/", location=3),
    "NumpadMultiply": KeyDefinition("*", location=3),
    "NumpadSubtract": KeyDefinition("-", location=3),
    "Numpad7": KeyDefinition("Home", "7", 3),
    "Numpad8": KeyDefinition("ArrowUp", "8", 3),
    "Numpad9": KeyDefinition("PageUp", "9", 3),
    "Numpad4": KeyDefinition("ArrowLeft", "4", 3),
    "Numpad5": KeyDefinition("Clear", "5", 3),
    "Numpad6": KeyDefinition("ArrowRight", "6", 3),
    "NumpadAdd": KeyDefinition("+", location=3),
    "Numpad1": KeyDefinition("End", "1", 3),
    "Numpad2": KeyDefinition("ArrowDown", "2", 3),
    "Numpad3": KeyDefinition("PageDown", "3", 3),
    "Numpad0": KeyDefinition("Insert", "0", 3),
    "NumpadDecimal": KeyDefinition("Delete", ".", 3),
    "NumpadEnter": KeyDefinition("Enter", location=3),
}
# Playwright's other names for some codes (input.ts `aliases`).
ALIASES: Mapping[str, tuple[str, ...]] = {
    "ShiftLeft": ("Shift",),
    "ControlLeft": ("Control",),
    "AltLeft": ("Alt",),
    "MetaLeft": ("Meta",),
    "Enter": ("\n", "\r"),
}
# Playwright turns it into Meta on macOS and Control elsewhere before looking it up.
SMART_MODIFIER = "ControlOrMeta"
KEY_HINT = (
    "a key is a name such as Enter, Tab, Escape, ArrowDown, F5 (F1 to F12) or KeyA, one "
    "character of a US keyboard, or keys joined with + (Control+A, Shift+Tab, Control++)"
)


@functools.cache
def key_names() -> frozenset[str]:
    """Every name Playwright's keyboard looks up: codes, aliases, and one-character keys."""
    names = {SMART_MODIFIER}
    for code, definition in US_KEYBOARD_LAYOUT.items():
        names.add(code)
        names.update(ALIASES.get(code, ()))
        if definition.location:
            continue  # the numpad's "/" is not what "/" names
        names.update(key for key in (definition.key, definition.shift_key) if len(key) == 1)
    return frozenset(names)


def split_keys(press: str) -> list[str]:
    """The keys of a press, as Playwright splits it: on '+', but a '+' starting a key is one."""
    keys: list[str] = []
    building = ""
    for character in press:
        if character == "+" and building:
            keys.append(building)
            building = ""
        else:
            building += character
    keys.append(building)
    return keys


def unknown_key_problem(press: str) -> str | None:
    """Why Playwright would refuse to press `press` (its first unknown key), or None."""
    for key in split_keys(press):
        if key in key_names():
            continue
        if not key:
            return f"{press!r} has no key after a '+' (the + key itself is '+', e.g. 'Control++')"
        where = "" if key == press else f" in {press!r}"
        return f"unknown key {key!r}{where}{_suggestion(key)}; {KEY_HINT}"
    return None


def _suggestion(key: str) -> str:
    named = [name for name in key_names() if len(name) > 1]
    same_but_case = [name for name in named if name.lower() == key.lower()]
    close = same_but_case or difflib.get_close_matches(key, named, n=1, cutoff=0.85)
    return f" (did you mean {close[0]!r}?)" if close else ""
