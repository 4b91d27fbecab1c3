"""The pages of the MCP tools' tests (served by tests.pages under /mcp/)."""

MCP_PAGES: dict[str, str] = {
    # The MCP "form testing" workflow: fill, choose, submit, read; a console error on submit.
    "/mcp/form": """<!doctype html><html><head><title>Order</title></head><body>
        <h1>Order fruit</h1>
        <form onsubmit="event.preventDefault();
          const field = (id) => document.getElementById(id).value;
          document.getElementById('result').textContent =
            'Ordered ' + field('fruit') + ' for ' + field('name');
          console.error('order service unavailable');">
          <label>Name <input id="name"></label>
          <label>Fruit <select id="fruit"><option value="apple">Apple</option>
            <option value="pear">Pear</option></select></label>
          <button type="submit">Order</button>
        </form>
        <p id="result" role="status">nothing ordered</p></body></html>""",
    # The MCP "accessibility audit" workflow: an image without alt, a nameless button.
    "/mcp/inaccessible": """<!doctype html><html><head><title>Shop</title></head><body>
        <img src="/none.png" width="40" height="40">
        <button></button><p style="color:#ddd;background:#fff">Hard to read</p></body></html>""",
    # A click that opens a pop-up, a link to a new tab, a download link.
    "/mcp/opener": """<!doctype html><html><head><title>Opener</title></head><body>
        <button id="pop" onclick="window.open('/mcp/inner')">Pop up</button>
        <a id="blank" href="/mcp/inner" target="_blank">New tab</a>
        <a id="dl" href="/download">Report</a></body></html>""",
    "/mcp/inner": """<!doctype html><html><head><title>Inner</title></head><body>
        <p>Opened from the opener.</p></body></html>""",
    # A page whose text and fields are in a same-origin frame.
    "/mcp/framed": """<!doctype html><html><head><title>Framed</title></head><body>
        <h1>Outside</h1><iframe title="Offer" src="/mcp/frame"></iframe></body></html>""",
    "/mcp/frame": """<!doctype html><html><head><title>Offer</title></head><body>
        <p id="price">Price: 42 EUR</p><a href="/mcp/inner">Details</a></body></html>""",
}
