"""A local web site for the tests' browsers: fixed pages, slow pages and gates."""

import base64
import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from tests.audit_pages import AUDIT_HEADERS, AUDIT_PAGES, mixed_content_page
from tests.capture_pages import CAPTURE_PAGES
from tests.fault_pages import FAULT_PAGES
from tests.kind_pages import KIND_PAGES, SVG_DOCUMENT
from tests.mcp_pages import MCP_PAGES
from tests.state_pages import (
    CACHED_SCRIPT,
    FIND_STATE_PAGE,
    LEAVE_STATE_PAGE,
    STATE_SERVICE_WORKER,
)
from tests.toolbox_pages import (
    echo_page,
    reach_page,
    resources_page,
    service_worker_page,
    service_worker_script,
    visual_page,
    webrtc_page,
)

PAGES: dict[str, str] = {
    "/page": """<!doctype html><html><head><title>Test page</title></head><body>
        <h1>Hello, farm</h1>
        <p class="intro">Browsers as a service.</p>
        <a href="/one" data-id="1">One</a> <a href="/two" data-id="2">Two</a>
        <ul><li>apple</li><li>pear</li><li>plum</li></ul>
        </body></html>""",
    # 1.5 MB of text: more than one NATS message holds.
    "/big-text": "<!doctype html><html><head><title>Big text</title></head><body><p>"
    + "farm " * 300_000
    + "</p></body></html>",
    "/tall": """<!doctype html><html><head><title>Tall</title></head>
        <body style="margin:0"><div style="height:3000px;background:linear-gradient(red,blue)">
        </div><p id="end">The end</p></body></html>""",
    "/box": """<!doctype html><html><head><title>Box</title></head><body style="margin:0">
        <div style="height:100px"></div>
        <div id="box" style="width:300px;height:200px;margin-left:50px;background:#c33"></div>
        </body></html>""",
    # A form Chromium's autofill recognises (names, address, contact): a full Chromium
    # asks its autofill server about such a form unless told not to.
    "/address-form": """<!doctype html><html><head><title>Address</title></head><body>
        <form action="/page" method="get">
        <input id="name" name="name" autocomplete="name">
        <input id="email" name="email" type="email" autocomplete="email">
        <input id="street" name="street" autocomplete="street-address">
        <input id="city" name="city" autocomplete="address-level2">
        <input id="zip" name="zip" autocomplete="postal-code">
        <input id="tel" name="tel" type="tel" autocomplete="tel">
        <button id="send">Send</button></form></body></html>""",
    "/form": """<!doctype html><html><head><title>Form</title></head><body>
        <input id="q" value=""><button id="go"
          onclick="document.getElementById('out').textContent = 'You asked: ' +
                   document.getElementById('q').value">Go</button>
        <p id="out">nothing yet</p></body></html>""",
    **FAULT_PAGES,
    # What a result can collect: logs at each level and an uncaught error, a script that
    # loads (and warns), an image that is missing, one the egress guard refuses (a
    # metadata address), a cookie; every URL has a query holding a secret ("hush-…").
    "/observed": """<!doctype html><html><head><title>Observed</title>
        <script src="/observed.js?key=hush-script"></script></head><body>
        <h1>Watched closely</h1><p>Text that paints.</p>
        <img src="/missing.png?key=hush-missing" alt="">
        <img src="http://169.254.169.254/refused.png?key=hush-refused" alt="">
        <script>
        console.log("a log"); console.info("an info"); console.debug("a debug");
        console.error("an error");
        document.cookie = "flavour=oat; path=/";
        </script>
        <script>throw new Error("boom");</script>
        </body></html>""",
    # Pages for the first contentful paint: one that never paints any content, and one
    # whose first content comes a second after its load (as a busy machine delays it).
    "/unpainted": """<!doctype html><html><head><title>Unpainted</title></head>
        <body></body></html>""",
    "/late-paint": """<!doctype html><html><head><title>Late paint</title></head><body>
        <script>addEventListener("load", () => setTimeout(() => {
          document.body.insertAdjacentHTML("beforeend", "<p>Painted at last</p>");
        }, 1000));</script></body></html>""",
    # A screen that changes over time, for screencasts: black, white, grey, then #done.
    "/ticking": """<!doctype html><html><head><title>Ticking</title></head>
        <body style="margin:0"><div id="screen" style="height:90vh;background:#000"></div>
        <script>const colors = ["#000", "#fff", "#777", "#fff", "#000"]; let tick = 0;
        const timer = setInterval(() => {
          tick += 1; document.getElementById("screen").style.background = colors[tick];
          if (tick === colors.length - 1) {
            clearInterval(timer);
            document.body.insertAdjacentHTML("beforeend", '<p id="done">done</p>');
          }
        }, 200);</script></body></html>""",
    # The toolbox's steps: a hover menu, a select, check boxes, late text, a late fetch.
    "/widgets": """<!doctype html><html><head><title>Widgets</title>
        <style>#menu-items { display: none } #menu:hover #menu-items { display: block }</style>
        </head><body>
        <div id="menu">Menu<ul id="menu-items"><li id="item">Item</li></ul></div>
        <select id="size"><option value="s">Small</option><option value="m">Medium</option>
          <option value="l">Large</option></select>
        <input type="checkbox" id="agree"><input type="checkbox" id="news" checked>
        <input type="checkbox" id="locked" disabled><span id="hidden" hidden>hidden</span>
        <input id="name" value="initial" data-kind="text">
        <button id="later" onclick="setTimeout(() => {
            document.getElementById('late').textContent = 'Thank you for waiting'; }, 300)">
          Later</button><p id="late"></p>
        <button id="load" onclick="fetch('/slow?ms=600').then(() => {
            document.getElementById('loaded').textContent = 'loaded'; })">Load</button>
        <p id="loaded">not yet</p>
        <p id="state"></p><script>
        const state = () => { document.getElementById("state").textContent = [
            document.getElementById("size").value, document.getElementById("agree").checked,
            document.getElementById("news").checked].join(","); };
        document.body.addEventListener("change", state); state();
        </script></body></html>""",
    # Signing in sets a cookie and a local storage item; #state tells what the page finds.
    "/login": """<!doctype html><html><head><title>Login</title></head><body>
        <p id="state"></p><button id="sign-in" onclick="signIn()">Sign in</button><script>
        function show() {
          const cookie = document.cookie.includes("sid=ann") ? "cookie" : "no cookie";
          const user = localStorage.getItem("user");
          document.getElementById("state").textContent =
            cookie + ", " + (user ? "local storage " + user : "no local storage");
        }
        function signIn() {
          document.cookie = "sid=ann; path=/; max-age=3600";
          localStorage.setItem("user", "ann");
          show();
        }
        show();</script></body></html>""",
    "/leave-state": LEAVE_STATE_PAGE,
    "/find-state": FIND_STATE_PAGE,
    **AUDIT_PAGES,
    **MCP_PAGES,
    **KIND_PAGES,
    **CAPTURE_PAGES,
}
SCRIPTS: dict[str, str] = {
    "/observed.js": 'console.warn("a warning from a script");',
    "/state-sw.js": STATE_SERVICE_WORKER,
}

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
"""A 1x1 GIF."""
# /asset/<kind>: what the resources page loads, and a whole SVG document; each counted
# under "asset/<kind>".
ASSETS: dict[str, tuple[bytes, str]] = {
    "image": (GIF, "image/gif"),
    "tracker": (GIF, "image/gif"),
    "style": (b"body { background: rgb(1, 2, 3) }", "text/css"),
    "font": (b"not really a font", "font/woff2"),
    "media": (b"not really a video", "video/webm"),
    "svg": (SVG_DOCUMENT, "image/svg+xml"),
}


@dataclass
class Site:
    """A local web site the tests' browsers visit; `/gate/<name>` answers when released."""

    base_url: str
    gates: dict[str, threading.Event] = field(default_factory=dict)
    # Guards the counts below; notified whenever a /count request begins.
    lock: threading.Condition = field(default_factory=threading.Condition)
    # /flaky/<name>, /count/<name>: requests seen per name. /count/<name>: requests in
    # flight and the most.
    hits: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    most_in_flight: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path

    def gate(self, name: str) -> threading.Event:
        with self.lock:
            return self.gates.setdefault(name, threading.Event())

    def release(self, name: str) -> None:
        self.gate(name).set()

    def hit(self, name: str) -> int:
        """Counts a request for `name`; returns how many came so far, this one included."""
        with self.lock:
            self.hits[name] = self.hits.get(name, 0) + 1
            return self.hits[name]

    def enter(self, name: str) -> None:
        """A request for `name` begins: counts it, and in flight, and keeps the most seen."""
        with self.lock:
            self.hits[name] = self.hits.get(name, 0) + 1
            self.in_flight[name] = self.in_flight.get(name, 0) + 1
            self.most_in_flight[name] = max(self.most_in_flight.get(name, 0), self.in_flight[name])
            self.lock.notify_all()

    def await_company(self, name: str, count: int, timeout: float) -> None:
        """Waits until `count` requests for `name` have been in flight at once, or `timeout`."""
        with self.lock:
            self.lock.wait_for(lambda: self.most_in_flight.get(name, 0) >= count, timeout)

    def leave(self, name: str) -> None:
        """A request for `name` ends."""
        with self.lock:
            self.in_flight[name] -= 1

    def release_all(self) -> None:
        with self.lock:
            for gate in self.gates.values():
                gate.set()


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path.startswith("/gate/"):
                # Bounded: a gate nobody opens still answers after 30 s, or `?wait=` seconds.
                bound = float(parse_qs(url.query).get("wait", ["30"])[0])
                site.gate(url.path.removeprefix("/gate/")).wait(timeout=bound)
                body = "<html><head><title>Gate</title></head><body>opened</body></html>"
            elif url.path == "/slow":
                time.sleep(int(parse_qs(url.query).get("ms", ["1000"])[0]) / 1000)
                body = "<html><head><title>Slow</title></head><body>late</body></html>"
            elif url.path.startswith("/status/"):
                # /status/503: an error page with that status.
                self.send_error(int(url.path.removeprefix("/status/")))
                return
            elif url.path.startswith("/empty/"):
                # /empty/404: that status with no body at all (Content-Length: 0).
                self.send_response(int(url.path.removeprefix("/empty/")))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            elif url.path.startswith("/flaky/"):
                # /flaky/<name>?fails=2: 503 for the first two requests, then the page.
                fails = int(parse_qs(url.query).get("fails", ["2"])[0])
                if site.hit(url.path.removeprefix("/flaky/")) <= fails:
                    self.send_error(503)
                    return
                body = "<html><head><title>Flaky</title></head><body>at last</body></html>"
            elif url.path.startswith("/count/"):
                # /count/<name>?ms=300: takes that long, or until the test releases gate
                # <name>, counting requests in flight. With &meet=2 it answers as soon as
                # two have been in flight at once, and after `ms` at the latest: side by
                # side is then shown however slowly a loaded machine sets up the tasks
                # around the requests. &hold=1500 keeps each request at least that long.
                name = url.path.removeprefix("/count/")
                query = parse_qs(url.query)
                seconds = int(query.get("ms", ["300"])[0]) / 1000
                started = time.monotonic()
                site.enter(name)
                try:
                    if "meet" in query:
                        site.await_company(name, int(query["meet"][0]), timeout=seconds)
                        held = int(query.get("hold", ["0"])[0]) / 1000
                        time.sleep(max(0.0, held - (time.monotonic() - started)))
                    else:
                        site.gate(name).wait(timeout=seconds)
                finally:
                    site.leave(name)
                body = "<html><head><title>Counted</title></head><body>counted</body></html>"
            elif url.path == "/redirect":
                # /redirect?to=<url>: a 302 to that URL.
                self.send_response(302)
                self.send_header("Location", parse_qs(url.query)["to"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            elif url.path == "/reach":
                # /reach?to=http://host:port: an img, iframe, fetch, XHR and WebSocket there.
                body = reach_page(parse_qs(url.query)["to"][0])
            elif url.path == "/service-worker":
                # /service-worker?to=http://host:port: a service worker that fetches from there.
                body = service_worker_page(parse_qs(url.query)["to"][0])
            elif url.path == "/sw.js":
                self._send(
                    service_worker_script(parse_qs(url.query)["to"][0]).encode(), "text/javascript"
                )
                return
            elif url.path == "/webrtc":
                # /webrtc?stun=host:port: gathers WebRTC candidates with that STUN server.
                body = webrtc_page(parse_qs(url.query)["stun"][0])
            elif url.path == "/echo":
                body = echo_page(self.headers)
            elif url.path == "/resources":
                # /resources?tracker=http://host:port: an image, a stylesheet, a font, a
                # video and a tracker pixel at that origin, each an /asset/<kind>.
                body = resources_page(parse_qs(url.query).get("tracker", [""])[0])
            elif url.path.startswith("/asset/") and url.path[7:] in ASSETS:
                site.hit(url.path.removeprefix("/"))
                self._send(*ASSETS[url.path[7:]])
                return
            elif url.path == "/audit/mixed":
                # /audit/mixed?to=http://host:port: an image from there over plain http.
                body = mixed_content_page(parse_qs(url.query)["to"][0])
            elif url.path == "/visual":
                # /visual?button=red&stamp=12:00&height=1500: #buy, #stamp and height vary.
                body = visual_page(parse_qs(url.query))
            elif url.path == "/cached.js":
                site.hit(url.path)
                self._send(CACHED_SCRIPT.encode(), "text/javascript", cache_seconds=3600)
                return
            elif url.path == "/cookie-header":
                self._send(self.headers.get("Cookie", "").encode(), "text/plain")
                return
            elif url.path == "/download":
                # /download?hold=<name>: half the file, the rest once gate <name> opens.
                site.hit(url.path)
                hold = parse_qs(url.query).get("hold", [""])[0]
                data = b"not a page" * int(parse_qs(url.query).get("times", ["1"])[0])
                self._send(data, "application/octet-stream", "file.bin", hold=hold)
                return
            elif url.path in SCRIPTS:
                self._send(SCRIPTS[url.path].encode(), "text/javascript")
                return
            elif url.path in PAGES:
                # Counted under their path ("/hang"), apart from the names of /flaky/<name>.
                site.hit(url.path)
                body = PAGES[url.path]
            else:
                self.send_error(404)
                return
            data = body.encode()
            try:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in AUDIT_HEADERS.get(url.path, []):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except ConnectionError:
                pass  # The browser gave up on a slow page (a timeout or cancel test).

        def _send(
            self,
            data: bytes,
            content_type: str,
            attachment: str = "",
            cache_seconds: int = 0,
            hold: str = "",
        ) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            if cache_seconds:
                self.send_header("Cache-Control", f"max-age={cache_seconds}")
            if attachment:
                self.send_header("Content-Disposition", f'attachment; filename="{attachment}"')
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if hold:
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                site.gate(hold).wait(timeout=30)
                data = data[len(data) // 2 :]
            # The browser may have refused a held download meanwhile.
            with contextlib.suppress(ConnectionError):
                self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve_site(host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> Iterator[Site]:
    """Serves the test pages on `host` (127.0.0.1) at a free port until the block ends.

    With `tls` (a server context) the site is https.
    """
    site = Site(base_url="")
    server = ThreadingHTTPServer((host, 0), _handler(site))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    site.base_url = f"{scheme}://{host}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="test-site", daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.release_all()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
