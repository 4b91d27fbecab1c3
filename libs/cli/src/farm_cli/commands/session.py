"""`farm session create|run|tabs|get|list|close|view-token|cdp-token`: the SessionService."""

import argparse
from collections.abc import Callable

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_cli.client import RUN_TIMEOUT, call_and_print, list_and_print
from farm_cli.commands.ranges import (
    INT32_MAX,
    add_page_arguments,
    whole_number,
    zero_or_whole_number_in,
)
from farm_cli.commands.task_action import CONTENT_FORMATS, IMAGE_FORMATS
from farm_cli.commands.task_spec import add_label_argument, label, viewport
from farm_cli.commands.task_text import labels_of, region, saved_name
from farm_cli.console import UsageError
from farm_core.task_limits import MAX_TIMEOUT_MS, MIN_TIMEOUT_MS

TABS_ACTIONS = {
    "list": sessions_pb2.TABS_ACTION_LIST,
    "select": sessions_pb2.TABS_ACTION_SELECT,
    "close": sessions_pb2.TABS_ACTION_CLOSE,
    "new": sessions_pb2.TABS_ACTION_NEW,
}
STATES = {"active": sessions_pb2.SESSION_STATE_ACTIVE, "closed": sessions_pb2.SESSION_STATE_CLOSED}


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `session` and its verbs."""
    group = commands.add_parser(
        "session", help="keep a browser across calls: open, drive, watch and close sessions"
    )
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    create = verbs.add_parser("create", help="open a session and print it (cdpUrl, liveUrl)")
    create.add_argument("--viewport", type=viewport, help="window size WIDTHxHEIGHT")
    create.add_argument("--device", help='a device Playwright knows, e.g. "iPhone 13"')
    create.add_argument("--region", type=region, help="only agents of this region")
    create.add_argument(
        "--idle-timeout",
        type=whole_number(INT32_MAX),
        default=0,
        metavar="S",
        help="close it after S seconds without a command (0: the farm's default)",
    )
    create.add_argument(
        "--max-lifetime",
        type=whole_number(INT32_MAX),
        default=0,
        metavar="S",
        help="close it S seconds after it opened at the latest (0: the farm's default)",
    )
    create.add_argument("--record", action="store_true", help="keep a video of the session")
    create.add_argument("--profile", type=saved_name, help="start from (and save to) this profile")
    add_label_argument(create, "a label (repeatable)")
    create.set_defaults(run=create_session)

    run = verbs.add_parser(
        "run", help="run a command on the session's page: go to URL, the steps, the action"
    )
    run.add_argument("id")
    run.add_argument("url", nargs="?", default="", help="go here first (else stay)")
    _add_step_arguments(run)
    action = run.add_mutually_exclusive_group()
    action.add_argument("--screenshot", action="store_true", help="take a screenshot")
    action.add_argument("--full-page", action="store_true", help="a screenshot of the whole page")
    action.add_argument("--pdf", action="store_true", help="print the page to PDF")
    action.add_argument("--content", choices=sorted(CONTENT_FORMATS), help="the html or text")
    action.add_argument(
        "--extract",
        type=label,
        action="append",
        metavar="NAME=SELECTOR",
        help="a value by selector (repeatable), e.g. title=h1 or links=a@href[]",
    )
    action.add_argument("--script", metavar="SOURCE", help='e.g. "() => document.title"')
    run.add_argument(
        "--format",
        dest="image_format",
        choices=sorted(IMAGE_FORMATS),
        help="the screenshot's (default: png)",
    )
    run.add_argument(
        "--timeout-ms",
        type=zero_or_whole_number_in(MIN_TIMEOUT_MS, MAX_TIMEOUT_MS),
        default=0,
        metavar="MS",
        help=f"time limit of the command, {MIN_TIMEOUT_MS} to {MAX_TIMEOUT_MS} "
        "(0: the farm's default)",
    )
    run.set_defaults(run=run_command)

    tabs = verbs.add_parser(
        "tabs",
        help="list the session's pages (tabs), or select, close or open one: "
        "list | select N | close N | new [URL]",
    )
    tabs.add_argument("id")
    tabs.add_argument("action", nargs="?", default="list", choices=sorted(TABS_ACTIONS))
    tabs.add_argument("target", nargs="?", help="the page's index (select, close) or URL (new)")
    tabs.set_defaults(run=run_tabs)

    get = verbs.add_parser("get", help="print one session")
    get.add_argument("id")
    get.set_defaults(run=get_session)

    listing = verbs.add_parser("list", help="list sessions, newest first")
    listing.add_argument("--state", choices=list(STATES), help="only sessions in this state")
    add_page_arguments(listing, every_page=False)
    listing.add_argument("--all", action="store_true", help="follow every page")
    listing.set_defaults(run=list_sessions)

    close = verbs.add_parser("close", help="close a session (its recording is stored)")
    close.add_argument("id")
    close.set_defaults(run=close_session)

    token = verbs.add_parser(
        "view-token", help="a one-time URL that opens the session's live view in a browser"
    )
    token.add_argument("id")
    token.set_defaults(run=view_token)
    cdp = verbs.add_parser(
        "cdp-token",
        help="a token, reusable until it expires, that attaches a CDP client sending no "
        "header: its cdpUrl (ws) and discoveryUrl (http, for connect_over_cdp)",
    )
    cdp.add_argument("id")
    cdp.set_defaults(run=cdp_token)


def _add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """Step flags; each may repeat, and the steps run in the order given."""
    steps = parser.add_argument_group("steps (in the order given)")
    for flag, field, metavar, text in (
        ("--click", "click", "SELECTOR", "click the element"),
        ("--wait-for", "wait_for", "SELECTOR", "wait until the element appears"),
        ("--press", "press", "KEY", "press a key, e.g. Enter or Control+A"),
        ("--scroll", "scroll", "WHERE", "scroll to bottom, top, or a selector"),
    ):
        steps.add_argument(
            flag, dest="steps", type=_step(field), action="append", metavar=metavar, help=text
        )
    steps.add_argument(
        "--fill",
        dest="steps",
        type=_fill_step,
        action="append",
        metavar="SELECTOR=VALUE",
        help="type VALUE into the field; the first = outside [...] and quotes ends SELECTOR, "
        "as in input[name=q]=farm",
    )
    for flag, step, text in (
        ("--back", tasks_pb2.Step(back=True), "go back one entry in the page's history"),
        ("--forward", tasks_pb2.Step(forward=True), "go forward one entry in the page's history"),
    ):
        steps.add_argument(flag, dest="steps", action="append_const", const=step, help=text)
    parser.set_defaults(steps=[])


def _step(field: str) -> Callable[[str], tasks_pb2.Step]:
    def parse(text: str) -> tasks_pb2.Step:
        step = tasks_pb2.Step()
        setattr(step, field, text)
        return step

    return parse


def _fill_step(text: str) -> tasks_pb2.Step:
    split = _selector_end(text)
    if split is None or split == 0:
        raise argparse.ArgumentTypeError(f"expected SELECTOR=VALUE, got {text!r}")
    fill = tasks_pb2.FillStep(selector=text[:split], value=text[split + 1 :])
    return tasks_pb2.Step(fill=fill)


def _selector_end(text: str) -> int | None:
    """Where the `=` after a selector is: the first outside `[...]` and quotes.

    So `input[name=q]=farm` fills `input[name=q]` with `farm`.
    """
    depth, quote = 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth = max(depth - 1, 0)
        elif char == "=" and depth == 0:
            return index
    return None


def create_session(args: argparse.Namespace) -> int:
    """CreateSession."""
    spec = sessions_pb2.SessionSpec(
        device=args.device or "",
        region=args.region or "",
        idle_timeout_seconds=args.idle_timeout,
        max_lifetime_seconds=args.max_lifetime,
        record=args.record,
        profile=args.profile or "",
        labels=labels_of(args.labels),
    )
    if args.viewport is not None:
        spec.viewport.CopyFrom(args.viewport)
    request = sessions_pb2.CreateSessionRequest(spec=spec)
    # The SDK's bounds, imported when used: the SDK loads grpc, which `farm --help` must not.
    from browserfarm.sessions import OPEN_SECONDS

    return call_and_print(lambda farm: farm.sessions.CreateSession, request, timeout=OPEN_SECONDS)


def command_from_args(args: argparse.Namespace) -> sessions_pb2.SessionCommand:
    """The SessionCommand the flags describe."""
    command = sessions_pb2.SessionCommand(
        url=args.url, steps=args.steps, timeout_ms=args.timeout_ms
    )
    if args.image_format and not (args.screenshot or args.full_page):
        raise UsageError("--format goes with --screenshot or --full-page")
    if args.screenshot or args.full_page:
        command.screenshot.full_page = args.full_page
        if args.image_format:
            command.screenshot.format = IMAGE_FORMATS[args.image_format]
        command.screenshot.SetInParent()
    elif args.pdf:
        command.pdf.SetInParent()
    elif args.content:
        command.content.format = CONTENT_FORMATS[args.content]
    elif args.extract:
        command.extract.fields.update(dict(args.extract))
    elif args.script:
        command.script.source = args.script
    return command


def run_command(args: argparse.Namespace) -> int:
    """RunSessionCommand: the command's result."""
    request = sessions_pb2.RunSessionCommandRequest(id=args.id, command=command_from_args(args))
    return call_and_print(
        lambda farm: farm.sessions.RunSessionCommand, request, timeout=RUN_TIMEOUT
    )


def tabs_command(action: str, target: str | None) -> sessions_pb2.SessionCommand:
    """The SessionCommand of `farm session tabs ID ACTION [TARGET]`."""
    tabs = sessions_pb2.TabsControl(action=TABS_ACTIONS[action])
    if action in ("select", "close"):
        if target is None or not target.isdigit() or int(target) > INT32_MAX:
            raise UsageError(f"tabs {action} needs the page's index (0 or more), got {target!r}")
        tabs.index = int(target)
        return sessions_pb2.SessionCommand(tabs=tabs)
    if action == "new":
        return sessions_pb2.SessionCommand(tabs=tabs, url=target or "")
    if target is not None:
        raise UsageError(f"tabs list takes no more arguments, got {target!r}")
    return sessions_pb2.SessionCommand(tabs=tabs)


def run_tabs(args: argparse.Namespace) -> int:
    """RunSessionCommand with `tabs`: the result's `json` lists the pages after it."""
    command = tabs_command(args.action, args.target)
    request = sessions_pb2.RunSessionCommandRequest(id=args.id, command=command)
    return call_and_print(
        lambda farm: farm.sessions.RunSessionCommand, request, timeout=RUN_TIMEOUT
    )


def get_session(args: argparse.Namespace) -> int:
    """GetSession."""
    request = sessions_pb2.GetSessionRequest(id=args.id)
    return call_and_print(lambda farm: farm.sessions.GetSession, request)


def list_sessions(args: argparse.Namespace) -> int:
    """ListSessions: one page, or with --all every page in one list."""
    request = sessions_pb2.ListSessionsRequest(
        state=STATES[args.state] if args.state else sessions_pb2.SESSION_STATE_UNSPECIFIED,
        page_size=args.page_size,
        page_token=args.page_token,
    )
    return list_and_print(
        lambda farm: farm.sessions.ListSessions, request, "sessions", every=args.all
    )


def close_session(args: argparse.Namespace) -> int:
    """CloseSession."""
    request = sessions_pb2.CloseSessionRequest(id=args.id)
    from browserfarm.sessions import CLOSE_SECONDS

    return call_and_print(lambda farm: farm.sessions.CloseSession, request, timeout=CLOSE_SECONDS)


def view_token(args: argparse.Namespace) -> int:
    """CreateViewToken: the token and the live view URL that carries it."""
    request = sessions_pb2.CreateViewTokenRequest(id=args.id)
    return call_and_print(lambda farm: farm.sessions.CreateViewToken, request)


def cdp_token(args: argparse.Namespace) -> int:
    """CreateCdpToken: the token, and the CDP and discovery URLs that carry it."""
    request = sessions_pb2.CreateCdpTokenRequest(id=args.id)
    return call_and_print(lambda farm: farm.sessions.CreateCdpToken, request)
