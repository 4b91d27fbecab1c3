"""The SessionCommand each tool sends, built from the tool's arguments.

Pure functions: what a tool asks of the farm, in the vocabulary of
farm.sessions.v1.SessionCommand, so that the tools and their tests read the same.
A selector is CSS, or an element reference from the last `snapshot`: the farm
takes "aria-ref=e5"; the snapshot prints "[ref=e5]", so "ref=e5" and "e5" are
accepted here too.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from google.protobuf.message import Message

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2

WaitUntilName = Literal["load", "domcontentloaded", "networkidle"]
ImageFormatName = Literal["png", "jpeg"]
ContentFormatName = Literal["text", "html"]
VideoFormatName = Literal["webm", "mp4", "gif"]
# get_cookies answers "Lax"; the proto enum's names (as its JSON spells them) are taken too.
SameSiteName = Literal[
    "",
    "Strict",
    "Lax",
    "None",
    "SAME_SITE_UNSPECIFIED",
    "SAME_SITE_STRICT",
    "SAME_SITE_LAX",
    "SAME_SITE_NONE",
]

WAIT_UNTIL: Mapping[str, "tasks_pb2.WaitUntil.ValueType"] = {
    "load": tasks_pb2.WAIT_UNTIL_LOAD,
    "domcontentloaded": tasks_pb2.WAIT_UNTIL_DOMCONTENTLOADED,
    "networkidle": tasks_pb2.WAIT_UNTIL_NETWORKIDLE,
}
IMAGE_FORMATS: Mapping[str, "tasks_pb2.ImageFormat.ValueType"] = {
    "png": tasks_pb2.IMAGE_FORMAT_PNG,
    "jpeg": tasks_pb2.IMAGE_FORMAT_JPEG,
}
CONTENT_FORMATS: Mapping[str, "tasks_pb2.ContentFormat.ValueType"] = {
    "text": tasks_pb2.CONTENT_FORMAT_TEXT,
    "html": tasks_pb2.CONTENT_FORMAT_HTML,
}
VIDEO_FORMATS: Mapping[str, "tasks_pb2.VideoFormat.ValueType"] = {
    "webm": tasks_pb2.VIDEO_FORMAT_WEBM,
    "mp4": tasks_pb2.VIDEO_FORMAT_MP4,
    "gif": tasks_pb2.VIDEO_FORMAT_GIF,
}
SAME_SITE: Mapping[str, "tasks_pb2.SameSite.ValueType"] = {
    "": tasks_pb2.SAME_SITE_UNSPECIFIED,
    "Strict": tasks_pb2.SAME_SITE_STRICT,
    "Lax": tasks_pb2.SAME_SITE_LAX,
    "None": tasks_pb2.SAME_SITE_NONE,
    "SAME_SITE_UNSPECIFIED": tasks_pb2.SAME_SITE_UNSPECIFIED,
    "SAME_SITE_STRICT": tasks_pb2.SAME_SITE_STRICT,
    "SAME_SITE_LAX": tasks_pb2.SAME_SITE_LAX,
    "SAME_SITE_NONE": tasks_pb2.SAME_SITE_NONE,
}
# The spelling a cookie's SameSite is answered in: the one set_cookies documents.
SAME_SITE_NAMES: Mapping["tasks_pb2.SameSite.ValueType", str] = {
    tasks_pb2.SAME_SITE_STRICT: "Strict",
    tasks_pb2.SAME_SITE_LAX: "Lax",
    tasks_pb2.SAME_SITE_NONE: "None",
}

# "[ref=e5]", "ref=e5" or "e5" (a frame's elements are "f1e2"): the snapshot's reference.
_SNAPSHOT_REF = re.compile(r"^\[?(?:ref=)?(?P<ref>(?:f\d+)?e\d+)\]?$")
_ARIA_REF = "aria-ref="
# The end of an extract rule after its selector: an "@attribute", then "[]" (every match).
_RULE_TAIL = re.compile(r"(?:@[A-Za-z_:][-A-Za-z0-9_:.]*)?(?:\[\])?$")


class ArgumentError(ValueError):
    """A tool's arguments do not make a command; the message says which and why."""


def selector(text: str) -> str:
    """The selector the farm takes: CSS as given, a snapshot reference as "aria-ref=eN"."""
    stripped = text.strip()
    if not stripped:
        raise ArgumentError("selector: give a CSS selector or a reference from snapshot")
    matched = _SNAPSHOT_REF.match(stripped)
    return f"{_ARIA_REF}{matched['ref']}" if matched else stripped


def snapshot_refs(command: Message) -> list[str]:
    """The snapshot references (as the model gave them, "e5") among `command`'s selectors."""
    refs: list[str] = []
    for field, value in command.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            values = list(value.values())
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            if isinstance(item, Message):
                refs.extend(snapshot_refs(item))
            elif isinstance(item, str) and item.startswith(_ARIA_REF):
                refs.append(item.removeprefix(_ARIA_REF))
    return refs


def navigate(url: str, wait_until: WaitUntilName) -> sessions_pb2.SessionCommand:
    """Go to `url`."""
    return sessions_pb2.SessionCommand(url=url, wait_until=WAIT_UNTIL[wait_until])


def navigate_back() -> sessions_pb2.SessionCommand:
    """Go back one entry in the page's history."""
    return steps(tasks_pb2.Step(back=True))


def navigate_forward() -> sessions_pb2.SessionCommand:
    """Go forward one entry in the page's history."""
    return steps(tasks_pb2.Step(forward=True))


TabsActionName = Literal["list", "select", "close", "new"]
TABS_ACTIONS: Mapping[str, "sessions_pb2.TabsAction.ValueType"] = {
    "list": sessions_pb2.TABS_ACTION_LIST,
    "select": sessions_pb2.TABS_ACTION_SELECT,
    "close": sessions_pb2.TABS_ACTION_CLOSE,
    "new": sessions_pb2.TABS_ACTION_NEW,
}


def tabs(action: TabsActionName, index: int, url: str) -> sessions_pb2.SessionCommand:
    """List the browser's pages, or select, close or open one (at `url`, if given)."""
    if action in ("select", "close") and index < 0:
        raise ArgumentError(f"index: give the index of the page to {action}, as list shows it")
    if url and action != "new":
        raise ArgumentError("url: only for action new")
    control = sessions_pb2.TabsControl(action=TABS_ACTIONS[action], index=max(index, 0))
    return sessions_pb2.SessionCommand(tabs=control, url=url)


def answer_dialog(accept: bool, prompt_text: str) -> sessions_pb2.SessionCommand:
    """Answer the dialog the page shows."""
    answer = sessions_pb2.DialogAnswer(accept=accept, prompt_text=prompt_text)
    return sessions_pb2.SessionCommand(dialog=answer)


def steps(*taken: tasks_pb2.Step) -> sessions_pb2.SessionCommand:
    """Run these steps on the current page."""
    return sessions_pb2.SessionCommand(steps=taken)


def click(target: str) -> sessions_pb2.SessionCommand:
    """Click an element."""
    return steps(tasks_pb2.Step(click=selector(target)))


def fill(target: str, value: str) -> sessions_pb2.SessionCommand:
    """Type `value` into a field, replacing what it held."""
    return steps(tasks_pb2.Step(fill=tasks_pb2.FillStep(selector=selector(target), value=value)))


def hover(target: str) -> sessions_pb2.SessionCommand:
    """Move the mouse over an element."""
    return steps(tasks_pb2.Step(hover=selector(target)))


def press(key: str, target: str) -> sessions_pb2.SessionCommand:
    """Press a key on the focused element; with `target`, click it first to focus it."""
    if not key.strip():
        raise ArgumentError('key: give a key, e.g. "Enter", "Tab", "ArrowDown" or "Control+A"')
    focus = [tasks_pb2.Step(click=selector(target))] if target else []
    return steps(*focus, tasks_pb2.Step(press=key))


def select(target: str, value: str, label: str) -> sessions_pb2.SessionCommand:
    """Choose an option of a <select> by its value, or by its visible label."""
    if not value and not label:
        raise ArgumentError("give the option's value or its label")
    if value and label:
        # The farm refuses both: Playwright would choose an option matching either.
        raise ArgumentError("give the option's value or its label, not both")
    option = tasks_pb2.SelectStep(selector=selector(target), value=value, label=label)
    return steps(tasks_pb2.Step(select=option))


def wait_for(
    target: str, text: str, time_ms: int, network_idle: bool
) -> sessions_pb2.SessionCommand:
    """Wait for an element, a text, network quiet, or a time: exactly one of them."""
    given = [bool(target), bool(text), time_ms > 0, network_idle]
    if sum(given) != 1:
        raise ArgumentError("give exactly one of selector, text, time_ms or network_idle")
    if target:
        return steps(tasks_pb2.Step(wait_for=selector(target)))
    wait = tasks_pb2.WaitStep(text=text, ms=max(time_ms, 0), network_idle=network_idle)
    return steps(tasks_pb2.Step(wait=wait))


def screenshot(
    target: str,
    full_page: bool,
    image_format: ImageFormatName,
    quality: int,
    *,
    omit_background: bool = False,
    clip: Mapping[str, float] | None = None,
) -> sessions_pb2.SessionCommand:
    """A screenshot of the viewport, the whole page, one element or a rectangle (`clip`)."""
    options = tasks_pb2.ScreenshotOptions(
        full_page=full_page,
        format=IMAGE_FORMATS[image_format],
        selector=selector(target) if target else "",
        quality=quality if image_format == "jpeg" else 0,
        omit_background=omit_background,
    )
    if clip is not None:
        options.clip.CopyFrom(tasks_pb2.ScreenshotClip(**clip))
    return sessions_pb2.SessionCommand(screenshot=options)


def pdf(
    paper_format: str,
    landscape: bool,
    print_background: bool,
    *,
    margin: Mapping[str, str] | None = None,
    page_ranges: str = "",
    prefer_css_page_size: bool = False,
    scale: float = 0.0,
) -> sessions_pb2.SessionCommand:
    """The page printed to PDF; the farm checks the margins, page ranges and scale."""
    options = tasks_pb2.PdfOptions(
        paper_format=paper_format,
        landscape=landscape,
        print_background=print_background,
        margin=tasks_pb2.PdfMargin(**margin) if margin else None,
        page_ranges=page_ranges,
        prefer_css_page_size=prefer_css_page_size,
        scale=scale,
    )
    return sessions_pb2.SessionCommand(pdf=options)


def content(content_format: ContentFormatName) -> sessions_pb2.SessionCommand:
    """The page's text or HTML."""
    options = tasks_pb2.ContentOptions(format=CONTENT_FORMATS[content_format])
    return sessions_pb2.SessionCommand(content=options)


def extract(fields: Mapping[str, str]) -> sessions_pb2.SessionCommand:
    """Values by selector (CSS, or a snapshot reference, which reaches into frames too)."""
    if not fields:
        raise ArgumentError('fields: give at least one field, e.g. {"title": "h1"}')
    rules = {name: extract_rule(rule) for name, rule in fields.items()}
    return sessions_pb2.SessionCommand(extract=tasks_pb2.ExtractOptions(fields=rules))


def extract_rule(rule: str) -> str:
    """An extract rule with a snapshot reference as its selector ("e5@href") as "aria-ref=e5@href".

    The rest of the rule (an "@attribute", a trailing "[]") stays as given.
    """
    stripped = rule.strip()
    tail = _RULE_TAIL.search(stripped)
    head, rest = (stripped[: tail.start()], tail[0]) if tail else (stripped, "")
    matched = _SNAPSHOT_REF.match(head)
    return f"{_ARIA_REF}{matched['ref']}{rest}" if matched else rule


def evaluate(script: str) -> sessions_pb2.SessionCommand:
    """Run JavaScript in the page and return its value."""
    if not script.strip():
        raise ArgumentError("script: is empty")
    return sessions_pb2.SessionCommand(script=tasks_pb2.ScriptOptions(source=script))


def snapshot() -> sessions_pb2.SessionCommand:
    """The page's accessibility tree with element references."""
    return sessions_pb2.SessionCommand(snapshot=tasks_pb2.SnapshotOptions())


def audit(kind: "tasks_pb2.AuditKind.ValueType", url: str) -> sessions_pb2.SessionCommand:
    """One audit of the current page, or of `url` after going there."""
    return sessions_pb2.SessionCommand(url=url, audit=tasks_pb2.AuditOptions(kinds=[kind]))


def collect(
    *, console: bool = False, network: bool = False, cookies: bool = False
) -> sessions_pb2.SessionCommand:
    """Report the page's console, requests or cookies (console and requests since last asked)."""
    options = tasks_pb2.CollectOptions(console=console, network=network, cookies=cookies)
    return sessions_pb2.SessionCommand(collect=options)


@dataclass(frozen=True)
class Emulation:
    """What emulate_device changes: a named device, or a viewport and the like."""

    device: str = ""
    width: int = 0
    height: int = 0
    device_scale_factor: float = 0.0
    is_mobile: bool = False
    has_touch: bool = False
    user_agent: str = ""


def emulate(emulation: Emulation) -> sessions_pb2.SessionCommand:
    """Emulate a device, or a viewport with a scale, touch, a mobile layout or a user agent."""
    if (emulation.width > 0) != (emulation.height > 0):
        raise ArgumentError("give width and height together")
    command = sessions_pb2.SessionCommand(device=emulation.device)
    if emulation.width > 0:
        command.viewport.CopyFrom(
            tasks_pb2.Viewport(width=emulation.width, height=emulation.height)
        )
    setup = tasks_pb2.PageSetup(
        user_agent=emulation.user_agent,
        device_scale_factor=emulation.device_scale_factor,
        is_mobile=emulation.is_mobile,
        has_touch=emulation.has_touch,
    )
    if setup.ByteSize():
        command.setup.CopyFrom(setup)
    if not command.ByteSize():
        raise ArgumentError('give a device name (e.g. "iPhone 13") or a width and height')
    return command


def reset_emulation() -> sessions_pb2.SessionCommand:
    """Drop every emulation and setup change made since the browser opened."""
    return sessions_pb2.SessionCommand(reset_setup=True)


@dataclass(frozen=True)
class CookieIn:
    """A cookie to set: for a domain and path, or for a URL."""

    name: str
    value: str
    domain: str = ""
    path: str = ""
    url: str = ""
    expires: int = 0
    http_only: bool = False
    secure: bool = False
    same_site: SameSiteName = ""


def set_cookies(cookies: Sequence[CookieIn]) -> sessions_pb2.SessionCommand:
    """Give the browser these cookies from now on."""
    if not cookies:
        raise ArgumentError("cookies: give at least one cookie")
    setup = tasks_pb2.PageSetup(
        cookies=[
            tasks_pb2.Cookie(
                name=cookie.name,
                value=cookie.value,
                domain=cookie.domain,
                path=cookie.path,
                url=cookie.url,
                expires=cookie.expires,
                http_only=cookie.http_only,
                secure=cookie.secure,
                same_site=SAME_SITE[cookie.same_site],
            )
            for cookie in cookies
        ]
    )
    return sessions_pb2.SessionCommand(setup=setup)


def screencast(
    *, start: bool = False, stop: bool = False, video_format: VideoFormatName = "webm"
) -> sessions_pb2.SessionCommand:
    """Start or stop recording the screen, or (neither) ask how the recording stands."""
    control = sessions_pb2.ScreencastControl(start=start, stop=stop)
    if start:
        control.format = VIDEO_FORMATS[video_format]
    command = sessions_pb2.SessionCommand()
    command.screencast.CopyFrom(control)
    return command
