"""What a tool answers: a command's TaskResult as text a model reads, and images.

Pure functions. Large outputs (long content, PDFs, videos) are artifact links,
`<public url>/v1/artifacts/{id}:content`, fetched with an API key that has
`artifacts.read`.
"""

import json
from collections.abc import Callable, Iterable, Sequence

from google.protobuf import json_format

from farm.tasks.v1 import tasks_pb2
from farm_mcp_tools.commands import SAME_SITE_NAMES

ArtifactLink = Callable[[str], str]
"""The artifact link of an artifact id."""

AUDIT_NAMES = {
    tasks_pb2.AUDIT_KIND_ACCESSIBILITY: "Accessibility",
    tasks_pb2.AUDIT_KIND_PERFORMANCE: "Performance",
    tasks_pb2.AUDIT_KIND_SEO: "SEO",
    tasks_pb2.AUDIT_KIND_BEST_PRACTICES: "Best practices",
}
VIDEO_NAMES = {
    tasks_pb2.VIDEO_FORMAT_UNSPECIFIED: "webm",
    tasks_pb2.VIDEO_FORMAT_WEBM: "webm",
    tasks_pb2.VIDEO_FORMAT_MP4: "mp4",
    tasks_pb2.VIDEO_FORMAT_GIF: "gif",
}


def page_line(result: tasks_pb2.TaskResult) -> str:
    """Where the browser is now: title and URL (and HTTP status after a navigation)."""
    if result.HasField("dialog"):
        return dialog_line(result.dialog, result.final_url)
    status = f" (HTTP {result.http_status})" if result.http_status else ""
    return f'Page: "{result.title}" at {result.final_url}{status}'


def dialog_line(dialog: tasks_pb2.PageDialog, url: str) -> str:
    """A dialog the page shows, and how to answer it."""
    default = f" (default value {dialog.default_value!r})" if dialog.default_value else ""
    article = "An" if dialog.type.startswith(tuple("aeiou")) else "A"
    return (
        f"{article} {dialog.type} dialog is showing: {dialog.message!r}{default}, "
        f"on the page at {url}. "
        "Answer it with handle_dialog (accept true or false) before any other tool; "
        f"unanswered for {dialog.timeout_seconds} s, the farm dismisses it."
    )


def blocked_lines(result: tasks_pb2.TaskResult) -> list[str]:
    """The requests the farm's egress guard refused, one line each."""
    if not result.blocked_requests:
        return []
    return [
        "Requests the farm refused (the page loaded without them):",
        *(f"- {blocked.message or blocked.target}" for blocked in result.blocked_requests),
    ]


def opening_lines(result: tasks_pb2.TaskResult) -> list[str]:
    """The tabs the command's page opened and the downloads it started (the farm refuses)."""
    lines = []
    for page in result.opened_pages:
        title = f'"{page.title}"' if page.title else "(no title yet)"
        current = "now current" if page.current else "not current"
        lines.append(f"Opened a new tab: {title} at {page.url} (tab {page.index}, {current}).")
    if result.opened_pages:
        lines.append("The tools now act on the current tab; tabs lists and selects them.")
    for download in result.refused_downloads:
        name = f'"{download.suggested_filename}"' if download.suggested_filename else "a file"
        lines.append(
            f"Started a download of {name} from {download.url}: the farm refused it "
            "(it refuses every download); nothing was saved and nothing will arrive."
        )
    return lines


def done(what: str, result: tasks_pb2.TaskResult) -> str:
    """`what` happened, and where the browser is now (and what the page opened meanwhile)."""
    return "\n".join([what, page_line(result), *opening_lines(result), *blocked_lines(result)])


def artifact_of(
    result: tasks_pb2.TaskResult, kind: "tasks_pb2.ArtifactKind.ValueType"
) -> tasks_pb2.ArtifactRef | None:
    """The result's first artifact of `kind`, if any."""
    return next((ref for ref in result.artifacts if ref.kind == kind), None)


def artifact_line(what: str, ref: tasks_pb2.ArtifactRef, link: ArtifactLink) -> str:
    """A line naming an artifact and its link."""
    return f"{what} ({ref.content_type}, {ref.size_bytes} bytes): {link(ref.id)}"


def page_text(result: tasks_pb2.TaskResult, max_chars: int, link: ArtifactLink) -> str:
    """The page's content, cut at `max_chars` with a link to the whole of it."""
    text = result.text
    ref = artifact_of(result, tasks_pb2.ARTIFACT_KIND_CONTENT)
    whole = ref is None or ref.size_bytes <= len(text.encode())
    if whole and len(text) <= max_chars:
        return text
    shown = text[:max_chars]
    where = f"; all of it: {link(ref.id)}" if ref is not None else ""
    return f"{shown}\n\n[cut after {len(shown)} characters{where}]"


def cut(text: str, max_chars: int, hint: str = "") -> str:
    """`text`, or its first `max_chars` characters and a note saying it was cut (and `hint`)."""
    if len(text) <= max_chars:
        return text
    more = f"; {hint}" if hint else ""
    return f"{text[:max_chars]}\n\n[cut after {max_chars} of {len(text)} characters{more}]"


def json_text(value: object) -> str:
    """A JSON value, indented."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def result_json(result: tasks_pb2.TaskResult) -> object:
    """The result's `json` (an extract's values, a script's return value); None if unset."""
    if not result.HasField("json"):
        return None
    return _whole_numbers(json_format.MessageToDict(result.json))


# JavaScript's largest integer that a double holds exactly (Number.MAX_SAFE_INTEGER).
_MAX_SAFE_INTEGER = 2**53 - 1


def _whole_numbers(value: object) -> object:
    """`value` with its whole numbers as integers, as JavaScript's JSON.stringify writes them.

    A protobuf Value holds every number as a double: 5 would read 5.0.
    """
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE_INTEGER:
        return int(value)
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    return value


def console_lines(messages: Iterable[tasks_pb2.ConsoleMessage], max_entries: int) -> str:
    """Console messages, oldest first, the newest `max_entries` of them."""
    kept = list(messages)[-max_entries:]
    if not kept:
        return "No console messages."
    return "\n".join(
        f"[{message.level}] {message.text}" + (f" ({message.source})" if message.source else "")
        for message in kept
    )


def network_lines(requests: Iterable[tasks_pb2.NetworkRequest], max_entries: int) -> str:
    """Requests, oldest first, the newest `max_entries` of them."""
    kept = list(requests)[-max_entries:]
    if not kept:
        return "No requests."
    return "\n".join(_request_line(request) for request in kept)


def _request_line(request: tasks_pb2.NetworkRequest) -> str:
    outcome = request.failure or str(request.status)
    return (
        f"{request.method} {request.url} -> {outcome} "
        f"[{request.resource_type}, {request.duration_ms:.0f} ms, {request.size_bytes} bytes]"
    )


def failed(request: tasks_pb2.NetworkRequest) -> bool:
    """Whether a request failed: no answer, or an HTTP error status."""
    return bool(request.failure) or request.status >= 400


def cookie_lines(cookies: Sequence[tasks_pb2.Cookie]) -> str:
    """The page's cookies as JSON objects."""
    if not cookies:
        return "No cookies."
    return json_text([_cookie_dict(cookie) for cookie in cookies])


def _cookie_dict(cookie: tasks_pb2.Cookie) -> dict[str, object]:
    """A cookie as set_cookies takes it: SameSite "Lax", not the enum's "SAME_SITE_LAX"."""
    fields: dict[str, object] = json_format.MessageToDict(cookie, preserving_proto_field_name=True)
    if cookie.same_site in SAME_SITE_NAMES:
        fields["same_site"] = SAME_SITE_NAMES[cookie.same_site]
    return fields


def audit_text(result: tasks_pb2.TaskResult) -> str:
    """Each audit's score, and its failed checks worst first: what each wanted, what failed."""
    if not result.audit.results:
        return done("The farm returned no audit findings.", result)
    sections = [page_line(result)]
    for audit in result.audit.results:
        name = AUDIT_NAMES.get(audit.kind, "Audit")
        lines = [
            f"{name} audit: score {audit.score}/100, {audit.passed} checks passed, "
            f"{len(audit.findings)} failed."
        ]
        for number, finding in enumerate(audit.findings, start=1):
            where = f" Where: {', '.join(finding.targets)}." if finding.targets else ""
            # The title is what the check wants; the hint says what failed and the fix.
            wanted = finding.title.strip().rstrip(".")
            lines.append(
                f"{number}. [{finding.impact or 'info'}] {finding.id} failed (wanted: {wanted})."
                f" {finding.hint}{where}"
            )
        sections.append("\n".join(lines))
    return "\n\n".join(sections)


def screencast_text(result: tasks_pb2.TaskResult, link: ArtifactLink) -> str:
    """How the recording stands, and the video once it has stopped."""
    status = result.screencast
    state = "recording" if status.recording else "not recording"
    lines = [
        f"Screencast: {state} ({VIDEO_NAMES.get(status.format, 'webm')}), "
        f"{status.frames} frames, {status.seconds:.1f} s."
    ]
    video = artifact_of(result, tasks_pb2.ARTIFACT_KIND_VIDEO)
    if video is not None:
        lines.append(artifact_line("Video", video, link))
    return "\n".join(lines)


def stopped_screencast_text(result: tasks_pb2.TaskResult, link: ArtifactLink) -> str:
    """How the recording stands after a stop: the video, or why there is none."""
    text = screencast_text(result, link)
    if artifact_of(result, tasks_pb2.ARTIFACT_KIND_VIDEO) is not None:
        return text
    status = result.screencast
    if status.format == tasks_pb2.VIDEO_FORMAT_UNSPECIFIED:
        why = "no screencast was running (start_screencast starts one)"
    elif status.frames == 0:
        why = "the screencast recorded no frame"
    else:
        why = "no screencast was running, or its video could not be made (the agent logs why)"
    return f"{text}\nNo video was stored: {why}."
