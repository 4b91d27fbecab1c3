"""One AsyncClient over HTTP in one asyncio.run after another: the first loop's sockets close."""

import asyncio
import gc
import json
import threading
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import browserfarm


class TaskHandler(BaseHTTPRequestHandler):
    """Answers any GET with one queued task, keeping the connection open (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({"id": "tsk_1", "status": "TASK_STATUS_QUEUED"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def http_farm() -> Iterator[str]:
    """The URL of a local HTTP server that answers GetTask."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), TaskHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_second_loop_leaves_no_socket_of_the_first_open(http_farm: str) -> None:
    client = browserfarm.AsyncClient(url=http_farm, api_key="k", transport="http")

    async def second() -> str:
        async with client:
            return (await client.get("tsk_1")).id

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert asyncio.run(client.get("tsk_1")).id == "tsk_1"
        assert asyncio.run(second()) == "tsk_1"
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
