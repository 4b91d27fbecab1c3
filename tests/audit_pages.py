"""Test pages for the audits, built to fail and to pass each check (served by tests/pages.py)."""

from html import escape

# A 20x20 image that needs no request.
IMAGE = "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' width='20' height='20'/>"
# An icon that needs no request: a missing /favicon.ico is a console error of its own.
ICON = '<link rel="icon" href="data:,">'

INSECURE_PAGE_FINDINGS = frozenset(
    {
        "csp",
        "x-content-type-options",
        "frame-protection",
        "referrer-policy",
        "cookie-secure",
        "cookie-httponly",
        "cookie-samesite",
    }
)
"""The best-practices findings of /audit/insecure (served without security headers)."""

AUDIT_PAGES: dict[str, str] = {
    # Accessibility: no lang, an image without alt, grey on white, and a frame with
    # another image without alt.
    "/audit/a11y-bad": f"""<!doctype html><html><head>{ICON}<title>Audit: hard to use</title></head>
        <body><main><h1>Shop</h1><img src="{IMAGE}" id="no-alt">
        <p id="faint" style="color:#bbb;background:#fff">Hard to read</p>
        <iframe title="Offers" src="/audit/a11y-frame"></iframe></main></body></html>""",
    "/audit/a11y-frame": f"""<!doctype html><html lang="en"><head>{ICON}<title>Offers</title></head>
        <body><main><img src="{IMAGE}" id="framed"></main></body></html>""",
    "/audit/a11y-good": f"""<!doctype html><html lang="en"><head>{ICON}
        <title>Audit: easy to use</title></head><body><main><h1>Shop</h1>
        <img src="{IMAGE}" alt="A red square">
        <p style="color:#222;background:#fff">Easy to read</p><a href="/page">Home</a>
        </main></body></html>""",
    # SEO: no title, no description, noindex, a relative canonical, a bad hreflang, two
    # h1, a skipped heading level, an image without alt, links without real URLs.
    "/audit/seo-bad": f"""<!doctype html><html lang="en"><head>{ICON}
        <meta name="robots" content="noindex, nofollow">
        <link rel="canonical" href="/relative">
        <link rel="alternate" hreflang="english" href="https://example.com/en" id="bad-lang">
        </head><body><h1>One</h1><h1>Two</h1><h4 id="deep">Deep</h4>
        <img src="{IMAGE}" id="no-alt"><a href="javascript:void(0)" id="js-link">Go</a>
        <a onclick="location.href='/page'" id="click-link">Also</a></body></html>""",
    "/audit/seo-good": f"""<!doctype html><html lang="en"><head>{ICON}
        <title>Fresh apples and pears, delivered</title>
        <meta name="description" content="Fruit from the orchard at your door within a day.">
        <link rel="canonical" href="https://example.com/fruit">
        <link rel="alternate" hreflang="de-DE" href="https://example.com/de/fruit">
        <link rel="alternate" hreflang="x-default" href="https://example.com/fruit">
        </head><body><h1>Fruit</h1><h2>Apples</h2><h3>Red ones</h3><h2>Pears</h2>
        <img src="{IMAGE}" alt="An apple"><a href="/page">More</a></body></html>""",
    # Best practices: the same page, served with and without the security headers.
    "/audit/secure": f"""<!doctype html><html lang="en"><head>{ICON}<title>Secure</title></head>
        <body><p>Served with every security header.</p></body></html>""",
    "/audit/insecure": f"""<!doctype html><html lang="en"><head>{ICON}<title>Insecure</title></head>
        <body><p>Served without security headers, with open cookies.</p></body></html>""",
    "/audit/console-error": f"""<!doctype html><html lang="en"><head>{ICON}
        <title>Errors</title></head>
        <body><p>Logs an error.</p><script>console.error("boom: the cart failed");
        throw new Error("unhandled in test");</script></body></html>""",
    # Performance: once painted, the block below moves down by 300 px (a layout shift);
    # #shifted appears two frames after the shift, when it has been reported.
    "/audit/shift": """<!doctype html><html lang="en"><head><link rel="icon" href="data:,">
        <title>Shift</title></head>
        <body style="margin:0"><div id="gap"></div>
        <div id="moved" style="height:600px;background:#36c;color:#fff">Content that moves</div>
        <script>
        const later = (work) => requestAnimationFrame(() => requestAnimationFrame(work));
        later(() => {
          document.getElementById("gap").style.height = "300px";
          later(() => {
            const marker = document.createElement("p");
            marker.id = "shifted";
            marker.textContent = "shifted";
            document.body.append(marker);
          });
        });
        </script></body></html>""",
}

SECURITY_HEADERS: list[tuple[str, str]] = [
    ("Content-Security-Policy", "default-src 'self' data:; frame-ancestors 'none'"),
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Set-Cookie", "sessionid=s1; Path=/; Secure; HttpOnly; SameSite=Lax"),
]

AUDIT_HEADERS: dict[str, list[tuple[str, str]]] = {
    "/audit/secure": SECURITY_HEADERS,
    "/audit/insecure": [
        ("Referrer-Policy", "unsafe-url"),
        ("Set-Cookie", "sessionid=s1; Path=/"),
        ("Set-Cookie", "csrftoken=t1; Path=/"),
    ],
}
"""Headers sent with a page besides Content-Type and Content-Length."""


def mixed_content_page(origin: str) -> str:
    """A page (served over https) with an image from `origin` over plain http."""
    return f"""<!doctype html><html lang="en"><head>{ICON}<title>Mixed</title></head><body>
        <img src="{escape(origin)}/plain.png" alt="Loaded over http"></body></html>"""
