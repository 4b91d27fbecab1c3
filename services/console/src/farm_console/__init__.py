"""The web console: server-rendered pages (Jinja2 and htmx) over the farm's public gRPC API."""
