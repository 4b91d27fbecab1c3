"""Test pages for a PDF's and a screenshot's options: pages to print, a CSS page size, colours."""

CAPTURE_PAGES: dict[str, str] = {
    # Three printed pages, each starting with its marker text.
    "/three-pages": """<!doctype html><html><head><title>Three pages</title>
        <style>body{margin:0} p{break-after:page;font-size:20px}</style></head>
        <body><p>PageOne</p><p>PageTwo</p><p>PageThree</p></body></html>""",
    # A page that asks for 4in by 3in paper.
    "/css-page-size": """<!doctype html><html><head><title>Small paper</title>
        <style>@page{size:4in 3in} body{margin:0}</style></head>
        <body><p>Small</p></body></html>""",
    # No background of its own: a red square at the top left, a blue one beside it,
    # and a green one far down the page (below any viewport of the tests).
    "/colour-boxes": """<!doctype html><html><head><title>Boxes</title>
        <style>body{margin:0} div{position:absolute;width:100px;height:100px}</style></head>
        <body><div style="left:0;top:0;background:#f00"></div>
        <div style="left:100px;top:0;background:#00f"></div>
        <div style="left:0;top:1500px;background:#0f0"></div></body></html>""",
}
