"""A local web site for the tests' browsers: fixed pages, slow pages and gates."""

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PAGES: dict[str, str] = {
    "/page": """<!doctype html><html><head><title>Test page</title></head><body>
        <h1>Hello, farm</h1>
        <p class="intro">Browsers as a service.</p>
        <a href="/one" data-id="1">One</a> <a href="/two" data-id="2">Two</a>
        <ul><li>apple</li><li>pear</li><li>plum</li></ul>
        </body></html>""",
    "/tall": """<!doctype html><html><head><title>Tall</title></head>
        <body style="margin:0"><div style="height:3000px;background:linear-gradient(red,blue)">
        </div><p id="end">The end</p></body></html>""",
    "/box": """<!doctype html><html><head><title>Box</title></head><body style="margin:0">
        <div style="height:100px"></div>
        <div id="box" style="width:300px;height:200px;margin-left:50px;background:#c33"></div>
        </body></html>""",
    "/form": """<!doctype html><html><head><title>Form</title></head><body>
        <input id="q" value=""><button id="go"
          onclick="document.getElementById('out').textContent = 'You asked: ' +
                   document.getElementById('q').value">Go</button>
        <p id="out">nothing yet</p></body></html>""",
}


@dataclass
class Site:
    """A local web site the tests' browsers visit; `/gate/<name>` answers when released."""

    base_url: str
    gates: dict[str, threading.Event] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base_url + path

    def gate(self, name: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(name, threading.Event())

    def release(self, name: str) -> None:
        self.gate(name).set()

    def release_all(self) -> None:
        with self.lock:
            for gate in self.gates.values():
                gate.set()


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path.startswith("/gate/"):
                # Bounded: a gate nobody opens still answers after 30 s.
                site.gate(url.path.removeprefix("/gate/")).wait(timeout=30)
                body = "<html><head><title>Gate</title></head><body>opened</body></html>"
            elif url.path == "/slow":
                time.sleep(int(parse_qs(url.query).get("ms", ["1000"])[0]) / 1000)
                body = "<html><head><title>Slow</title></head><body>late</body></html>"
            elif url.path in PAGES:
                body = PAGES[url.path]
            else:
                self.send_error(404)
                return
            data = body.encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except ConnectionError:
                pass  # The browser gave up on a slow page (a timeout or cancel test).

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve_site() -> Iterator[Site]:
    """Serves the test pages on 127.0.0.1 at a free port until the block ends."""
    site = Site(base_url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    server.daemon_threads = True
    site.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="test-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.release_all()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
