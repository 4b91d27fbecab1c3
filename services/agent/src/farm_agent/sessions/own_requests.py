"""Which of the egress guard's refusals a session command's own pages asked for.

A session's egress listener serves its browser between commands too, and Chromium
makes requests of its own after a page has loaded (the favicon of an error page, a
moment after the command that opened it failed). A refusal counts for a command only
if a page of the session asked for that host and port while the command ran.
"""

from playwright.async_api import Page, Request, WebSocket

from farm.tasks.v1 import tasks_pb2
from farm_agent.egress.proxy_wire import host_port, target_host_port, url_host_port


class OwnRequests:
    """The hosts and ports the session's pages asked for from `start` to `stop`."""

    def __init__(self, page: Page) -> None:
        self._page = page
        self._context = page.context
        self.seen: set[str] = set()

    def start(self) -> None:
        """Starts noting requests (of every page of the context) and the page's websockets."""
        self._context.on("request", self._on_request)
        self._page.on("websocket", self._on_websocket)

    def stop(self) -> None:
        """Stops noting requests."""
        self._context.remove_listener("request", self._on_request)
        self._page.remove_listener("websocket", self._on_websocket)

    def keep_own(self, result: tasks_pb2.TaskResult) -> None:
        """Drops from `result` the refusals of requests no page of the session made meanwhile."""
        own = [
            blocked
            for blocked in result.blocked_requests
            if target_host_port(blocked.target) in self.seen
        ]
        del result.blocked_requests[:]
        result.blocked_requests.extend(own)

    def _note(self, url: str) -> None:
        host, port = url_host_port(url)
        if host:
            self.seen.add(host_port(host, port))

    def _on_request(self, request: Request) -> None:
        self._note(request.url)

    def _on_websocket(self, websocket: WebSocket) -> None:
        self._note(websocket.url)
