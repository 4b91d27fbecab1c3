"""Test pages of browser faults: a script that never ends, questions, a pop-up, memory."""

FAULT_PAGES: dict[str, str] = {
    # Browser faults: a page that never stops its script, one that asks questions, one
    # that opens a pop-up, one that allocates memory until its renderer dies.
    "/hang": """<!doctype html><html><head><title>Hang</title></head><body>
        <script>while (true) {}</script></body></html>""",
    "/dialog": """<!doctype html><html><head><title>Dialog</title></head><body>
        <script>alert("hello"); const sure = confirm("sure?"); const name = prompt("name?");
        window.addEventListener("beforeunload", (event) => { event.preventDefault(); });
        document.title = "confirm=" + sure + " prompt=" + name;</script></body></html>""",
    "/ask": """<!doctype html><html><head><title>Ask</title></head><body>
        <button id="confirm" onclick="out.textContent = 'confirm=' + confirm('Are you sure?')">
        Delete</button>
        <button id="prompt" onclick="out.textContent = 'prompt=' + prompt('Your name?', 'anon')">
        Name</button><p id="out"></p></body></html>""",
    # Opens a pop-up, then shows "settled" once the pop-up has loaded or been closed
    # (by the agent): by then the agent's browser has surely told it of the pop-up.
    "/popup": """<!doctype html><html><head><title>Opener</title></head><body>
        <script>
        const popup = window.open("/page", "_blank");
        const look = () => {
          let done = true;
          try { done = !popup || popup.closed || popup.document.readyState === "complete"; }
          catch (error) {}
          if (done) { const p = document.createElement("p"); p.id = "popup-settled";
                      p.textContent = "settled"; document.body.append(p); }
          else { setTimeout(look, 20); }
        };
        look();
        </script></body></html>""",
    "/memory": """<!doctype html><html><head><title>Memory</title></head><body><script>
        const kept = []; while (true) { kept.push(new Array(1000000).fill(Math.random())); }
        </script></body></html>""",
}
