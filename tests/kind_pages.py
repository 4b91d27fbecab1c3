"""Test pages of unusual shapes for the task kinds: no body, content past the body, a late hang."""

KIND_PAGES: dict[str, str] = {
    # A frameset document: its body is the <frameset>, and no <body> element exists.
    "/frameset": """<!doctype html><html><head><title>Frames</title></head>
        <frameset cols="50%,50%"><frame src="/page"><frame src="/box"></frameset></html>""",
    # The body holds a heading; the page is 3000 px tall only by an absolutely placed box.
    "/outside-body": """<!doctype html><html><head><title>Outside</title></head>
        <body style="margin:0"><h1>Short body</h1>
        <div id="far" style="position:absolute;top:2900px;height:100px;width:10px"></div>
        </body></html>""",
    # Taller than the 65535 pixels a JPEG may have a side.
    "/very-tall": """<!doctype html><html><head><title>Very tall</title></head>
        <body style="margin:0"><div style="height:70000px;background:#36c"></div></body></html>""",
    # Loads, then its main thread spins for ever: the navigation ends, the action never does.
    "/hang-after-load": """<!doctype html><html><head><title>Hang later</title></head>
        <body><p>Loaded</p><script>
        addEventListener("load", () => setTimeout(() => { while (true) {} }, 0));
        </script></body></html>""",
}

SVG_DOCUMENT = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="100" height="60">'
    b'<rect width="100" height="60" fill="red"/><text x="5" y="30">Drawn text</text></svg>'
)
"""A whole document that is an SVG image: its root is no HTML element, and it has no body."""
