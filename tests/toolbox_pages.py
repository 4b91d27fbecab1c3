"""Pages of the test site made for each request: what the toolbox tests read back.

Headers echoed, third-party resources, visual changes, reachability probes, a
service worker and WebRTC candidates.
"""

from email.message import Message
from html import escape
from urllib.parse import quote

ECHO_FIELDS = {
    name: f"#{name}"
    for name in (
        "h-ua",
        "h-lang",
        "h-test",
        "h-cookie",
        "js",
        "ua",
        "lang",
        "tz",
        "dpr",
        "touch",
        "width",
        "cookie",
    )
}
"""The selector of each field /echo shows (echo_page), by the field's id."""


def echo_page(headers: Message) -> str:
    """The request's headers as the server got them (#h-*) and what the page's script sees."""
    seen = {
        "h-ua": headers.get("User-Agent", ""),
        "h-lang": headers.get("Accept-Language", ""),
        "h-test": headers.get("X-Farm-Test", ""),
        "h-cookie": headers.get("Cookie", ""),
    }
    shown = "".join(f'<p id="{name}">{escape(value)}</p>' for name, value in seen.items())
    return f"""<!doctype html><html><head><title>Echo</title>
        <meta name="viewport" content="width=device-width"></head><body>{shown}
        <p id="js">off</p><p id="ua"></p><p id="lang"></p><p id="tz"></p><p id="dpr"></p>
        <p id="touch"></p><p id="width"></p><p id="cookie"></p><script>
        const show = (id, value) => {{ document.getElementById(id).textContent = String(value); }};
        show("js", "on"); show("ua", navigator.userAgent); show("lang", navigator.language);
        show("tz", Intl.DateTimeFormat().resolvedOptions().timeZone);
        show("dpr", devicePixelRatio); show("touch", navigator.maxTouchPoints);
        show("width", innerWidth); show("cookie", document.cookie);
        </script></body></html>"""


def resources_page(tracker_origin: str) -> str:
    """An image, a stylesheet, a font, a video and (with an origin) a tracker pixel there.

    #image tells whether the image loaded; #tracker, the tracker pixel; #media, once the
    video's request has ended, whether it played ("failed": refused, or not a video).
    """
    tracker = (
        f'<img id="pixel" src="{escape(tracker_origin)}/asset/tracker" '
        "onload=\"show('tracker', 'loaded')\" onerror=\"show('tracker', 'failed')\">"
        if tracker_origin
        else ""
    )
    return f"""<!doctype html><html><head><title>Resources</title>
        <link rel="stylesheet" href="/asset/style">
        <style>@font-face {{ font-family: Farm; src: url(/asset/font) }}
        body {{ font-family: Farm }}</style><script>
        const show = (id, text) => {{ document.getElementById(id).textContent = text; }};
        </script></head><body><p>Text in a web font</p>
        <p id="image">pending</p><p id="tracker">none</p><p id="media">pending</p>
        <img src="/asset/image" onload="show('image', 'loaded')" onerror="show('image', 'failed')">
        {tracker}<video src="/asset/media" preload="auto"
        onloadeddata="show('media', 'loaded')" onerror="show('media', 'failed')"></video>
        </body></html>"""


def visual_page(query: dict[str, list[str]]) -> str:
    """A fixed layout whose #buy colour (a CSS name), #stamp text and least height (px) vary."""
    color = "".join(c for c in query.get("button", ["steelblue"])[0] if c.isalnum())
    stamp = escape(query.get("stamp", ["09:00"])[0])
    height = int(query.get("height", ["0"])[0])
    return f"""<!doctype html><html><head><title>Visual</title><style>
        body {{ margin: 0; font: 16px sans-serif; background: white; min-height: {height}px; }}
        header {{ height: 60px; background: #223; }}
        #buy {{ position: absolute; left: 100px; top: 200px; width: 120px; height: 40px;
                background: {color}; border: 0; }}
        #stamp {{ position: absolute; left: 400px; top: 200px; width: 100px; height: 40px;
                  margin: 0; background: #eee; font-size: 28px; }}
        </style></head><body><header></header><button id="buy"></button>
        <p id="stamp">{stamp}</p></body></html>"""


def reach_page(origin: str) -> str:
    """A page whose img, iframe, fetch, XHR and WebSocket go to `origin`; #fetch, #xhr, #ws tell."""
    websocket = "ws" + origin.removeprefix("http")
    return f"""<!doctype html><html><head><title>Reach</title></head><body>
        <img src="{escape(origin)}/img"><iframe src="{escape(origin)}/frame"></iframe>
        <p id="fetch">pending</p><p id="xhr">pending</p><p id="ws">pending</p><script>
        const show = (id, text) => {{ document.getElementById(id).textContent = text; }};
        fetch({origin!r} + "/fetch").then((r) => r.text()).then((t) => show("fetch", "got " + t),
            () => show("fetch", "failed"));
        const xhr = new XMLHttpRequest();
        xhr.open("GET", {origin!r} + "/xhr");
        xhr.timeout = 5000;
        xhr.onload = () => show("xhr", "got " + xhr.responseText);
        xhr.onerror = xhr.ontimeout = () => show("xhr", "failed");
        xhr.send();
        const socket = new WebSocket({websocket!r} + "/ws");
        socket.onopen = () => socket.send("ping");
        socket.onmessage = (event) => show("ws", "got " + event.data);
        socket.onerror = () => show("ws", "failed");
        </script></body></html>"""


def service_worker_page(origin: str) -> str:
    """Registers /sw.js for `origin`, then tells in #sw what the worker's fetches got.

    #through tells how the page's own fetch to `origin` ended once the worker handled it.
    """
    script = "/sw.js?to=" + quote(origin, safe="")
    return f"""<!doctype html><html><head><title>Service worker</title></head><body>
        <p id="sw">pending</p><p id="through">pending</p><script>
        const show = (id, text) => {{ document.getElementById(id).textContent = text; }};
        const controlled = () => navigator.serviceWorker.controller ? Promise.resolve() :
            new Promise((done) => navigator.serviceWorker.oncontrollerchange = done);
        navigator.serviceWorker.register({script!r}, {{scope: "/"}})
            .then(() => navigator.serviceWorker.ready).then(controlled)
            .then(() => fetch("/sw-report")).then((r) => r.text()).then((t) => show("sw", t))
            .then(() => fetch({origin!r} + "/through"))
            .then((r) => r.text()).then((t) => show("through", "got " + t),
                () => show("through", "failed"))
            .catch((error) => {{ show("sw", "error " + error); show("through", "skipped"); }});
        </script></body></html>"""


def service_worker_script(origin: str) -> str:
    """A service worker whose importScripts, install and fetch handlers ask `origin`."""
    return f"""
        const to = {origin!r};
        const got = (promise) => promise.then((r) => r.text())
            .then((t) => "got " + t, () => "failed");
        let imported = "got it";
        try {{ importScripts(to + "/sw-import.js"); }} catch (error) {{ imported = "failed"; }}
        let installed = "pending";
        self.addEventListener("install", (event) => {{
            self.skipWaiting();
            event.waitUntil(got(fetch(to + "/sw-install")).then((t) => {{ installed = t; }}));
        }});
        self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
        self.addEventListener("fetch", (event) => {{
            if (new URL(event.request.url).pathname === "/sw-report") {{
                event.respondWith(got(fetch(to + "/sw-fetch")).then((fetched) => new Response(
                    `import ${{imported}}, install ${{installed}}, fetch ${{fetched}}`)));
            }} else {{
                event.respondWith(fetch(event.request));
            }}
        }});
        """


def webrtc_page(stun: str) -> str:
    """A page that gathers ICE candidates with STUN server `stun`; #ice says how many."""
    return f"""<!doctype html><html><head><title>WebRTC</title></head><body>
        <p id="ice">pending</p><script>
        const show = (text) => {{ document.getElementById("ice").textContent = text; }};
        const peer = new RTCPeerConnection({{iceServers: [{{urls: {"stun:" + stun!r}}}]}});
        let found = 0;
        peer.onicecandidate = (event) => {{
            if (event.candidate) {{ found += 1; }} else {{ show("done " + found); }}
        }};
        peer.createDataChannel("probe");
        peer.createOffer().then((offer) => peer.setLocalDescription(offer));
        setTimeout(() => show("gave up " + found), 3000);
        </script></body></html>"""
