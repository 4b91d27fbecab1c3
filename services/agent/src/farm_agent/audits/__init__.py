"""Page audits (the `audit` action): accessibility, performance, SEO and best practices.

`runner.run_audits` runs the asked kinds on a loaded page; each kind is a module of
its own; `observer.PageObserver` notes what the audits need from the page's loading
(the main document's response, console errors, insecure requests).
"""
