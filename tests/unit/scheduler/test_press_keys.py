"""A `press` step's key is checked at create with Playwright's own key names and rules."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.errors import InvalidArgument
from farm_scheduler.key_names import US_KEYBOARD_LAYOUT, KeyDefinition
from farm_scheduler.sessions.validation import validate_command
from tests.helpers import task_spec
from tests.unit.scheduler.conftest import validate

# Every key the docs, the MCP tool and the tests press, and Playwright's other forms.
PRESSED_TODAY = [
    "Enter", "Tab", "Escape", "ArrowDown", "ArrowLeft", "F1", "F5", "F12", "KeyA",
    "Backspace", "Control+A", "Shift+Tab", "Control+Shift+Tab", " ", "a", "A", "1", "!",
    "+", "Control++", "a++", "a+b", "ControlOrMeta+A", "\n", "\r", "Shift", "ShiftLeft",
    "AltGraph", "Numpad5", "NumpadEnter", "Space", "Meta+ArrowUp", "PageDown", "Delete",
]  # fmt: skip
# What Playwright 1.65's keyboard.press refused with "Unknown key" in Chromium.
REFUSED_BY_PLAYWRIGHT = [
    "Entr", "enter", "F13", "F24", "é", "\t", "Clear", "Control+", "++", "+a",
    "Meta+Entr", "Esc", "Ctrl+A", "Cmd+A", "Return",
]  # fmt: skip


@pytest.mark.parametrize("key", PRESSED_TODAY)
def test_a_key_playwright_presses_is_accepted(key: str) -> None:
    checked = validate(task_spec(steps=[{"press": key}]))
    assert checked.steps[0].press == key


@pytest.mark.parametrize("key", REFUSED_BY_PLAYWRIGHT)
def test_a_key_playwright_refuses_is_refused_at_create_naming_the_step(key: str) -> None:
    spec = task_spec(
        steps=[{"click": "#a"}, {"fill": {"selector": "#q", "value": "x"}}, {"press": key}]
    )
    with pytest.raises(InvalidArgument) as caught:
        validate(spec)
    assert caught.value.field == "steps[2].press"


def test_the_refusal_says_which_key_and_what_a_key_is() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(steps=[{"click": "#a"}, {"click": "#b"}, {"press": "Control+Entr"}]))
    message = caught.value.message
    assert message.startswith(
        "steps[2].press: unknown key 'Entr' in 'Control+Entr' (did you mean 'Enter'?); a key is"
    )
    assert "Shift+Tab" in message


def test_a_key_in_the_wrong_case_is_told_its_name() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(steps=[{"press": "arrowleft"}]))
    assert "(did you mean 'ArrowLeft'?)" in caught.value.message


def test_a_trailing_plus_is_told_how_to_press_plus() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate(task_spec(steps=[{"press": "Control+"}]))
    assert caught.value.message == (
        "steps[0].press: 'Control+' has no key after a '+' (the + key itself is '+', e.g. "
        "'Control++')"
    )


def test_a_session_command_is_checked_alike() -> None:
    command = sessions_pb2.SessionCommand(steps=[tasks_pb2.Step(press="NotAKey")])
    with pytest.raises(InvalidArgument) as caught:
        validate_command(command, default_timeout_ms=30000)
    assert caught.value.message.startswith("steps[0].press: unknown key 'NotAKey'")


def _installed_layout() -> dict[str, KeyDefinition]:
    """The USKeyboardLayout of the Playwright the agents run, read from its driver's bundle."""
    package = importlib.util.find_spec("playwright")
    assert package is not None and package.origin is not None
    lib = Path(package.origin).parent / "driver" / "package" / "lib"
    sources = [lib / "coreBundle.js", lib / "server" / "usKeyboardLayout.js"]
    text = next(path.read_text() for path in sources if path.exists())
    block = text[
        text.index("USKeyboardLayout = {") : text.index("};", text.index("USKeyboardLayout = {"))
    ]
    layout: dict[str, KeyDefinition] = {}
    for code, body in re.findall(r'^\s*"(\w+)": \{(.*)\},?$', block, re.MULTILINE):
        fields: dict[str, object] = {}
        for name, value in re.findall(r'"(\w+)": ("(?:[^"\\]|\\.)*"|\'[^\']*\'|\d+)', body):
            fields[name] = value[1:-1] if value.startswith("'") else json.loads(value)
        layout[code] = KeyDefinition(
            str(fields["key"]), str(fields.get("shiftKey", "")), int(str(fields.get("location", 0)))
        )
    return layout


def test_the_layout_is_the_installed_playwrights() -> None:
    installed = _installed_layout()
    assert len(installed) > 100
    assert dict(US_KEYBOARD_LAYOUT) == installed
    assert list(US_KEYBOARD_LAYOUT) == list(installed)
