"""Pages that leave every kind of browser state behind, and one that reports what it finds.

/leave-state writes a cookie, local and session storage, an IndexedDB database, a
cache storage entry, a service worker, window.name, and loads /cached.js (cached for
an hour); #done shows when all is written. /find-state reports, as JSON in #found
once #done shows, what a page of the same origin finds of it, with the Cookie header
the server got (/cookie-header) and the page's permissions.
"""

LEAVE_STATE_PAGE = """<!doctype html><html><head><title>Leave state</title>
    <script src="/cached.js"></script></head><body><p id="status">writing</p><script>
    const written = async () => {
      document.cookie = "leak=page; path=/; max-age=3600";
      localStorage.setItem("leak", "local");
      sessionStorage.setItem("leak", "session");
      window.name = "leak-name";
      await new Promise((done, failed) => {
        const opening = indexedDB.open("leakdb", 1);
        opening.onupgradeneeded = () => opening.result.createObjectStore("things");
        opening.onsuccess = () => {
          const writing = opening.result.transaction("things", "readwrite");
          writing.objectStore("things").put("secret", "key");
          writing.oncomplete = () => { opening.result.close(); done(); };
          writing.onerror = failed;
        };
        opening.onerror = failed;
      });
      const cache = await caches.open("leak-cache");
      await cache.put("/leak-entry", new Response("secret"));
      await navigator.serviceWorker.register("/state-sw.js", {scope: "/"});
      await navigator.serviceWorker.ready;
    };
    written().then(() => {
      const status = document.getElementById("status");
      status.id = "done";
      status.textContent = "written";
    }, (error) => { document.getElementById("status").textContent = "error " + error; });
    </script></body></html>"""

FIND_STATE_PAGE = """<!doctype html><html><head><title>Find state</title>
    <script src="/cached.js"></script></head><body><pre id="found"></pre><script>
    const permission = (name) => navigator.permissions.query({name}).then((p) => p.state);
    const position = () => new Promise((done) => navigator.geolocation.getCurrentPosition(
      (p) => done(`${p.coords.latitude},${p.coords.longitude}`),
      (error) => done("error " + error.code), {timeout: 2000}));
    const found = async () => ({
      cookie: document.cookie,
      cookieHeader: await fetch("/cookie-header").then((r) => r.text()),
      local: Object.keys(localStorage),
      session: Object.keys(sessionStorage),
      indexedDB: (await indexedDB.databases()).map((database) => database.name),
      caches: await caches.keys(),
      serviceWorkers: (await navigator.serviceWorker.getRegistrations()).length,
      controlled: Boolean(navigator.serviceWorker.controller),
      name: window.name,
      history: history.length,
      notifications: await permission("notifications"),
      geolocation: await permission("geolocation"),
      position: await position(),
    });
    found().then((report) => {
      const shown = document.getElementById("found");
      shown.textContent = JSON.stringify(report);
      shown.insertAdjacentHTML("afterend", '<p id="done">found</p>');
    }, (error) => { document.getElementById("found").textContent = "error " + error; });
    </script></body></html>"""

STATE_SERVICE_WORKER = """
    self.addEventListener("install", () => self.skipWaiting());
    self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
    self.addEventListener("fetch", (event) => event.respondWith(fetch(event.request)));
    """

CACHED_SCRIPT = "window.cachedScript = true;"
"""/cached.js, served with Cache-Control max-age=3600 and counted: a fetch from the cache is not."""
