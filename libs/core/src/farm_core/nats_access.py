"""How a farm process reaches NATS: the servers, its user, the CA it checks TLS with."""

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_INBOX_PREFIX = "_INBOX"
NATS_USER_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""NATS user names the farm uses: also one subject token (each user's inbox prefix)."""


def _without_userinfo(server: str) -> str:
    """`server` (nats://user:pass@host:port) without what precedes the host."""
    scheme, separator, rest = server.rpartition("://")
    return f"{scheme}{separator}{rest.rpartition('@')[2]}"


_TCP_SCHEMES = frozenset({"nats", "tls"})
_WEBSOCKET_SCHEMES = frozenset({"ws", "wss"})


def checked_server_urls(url: str) -> str:
    """`url` unchanged if every comma-separated entry is a NATS server URL; else ValueError.

    nats-py takes almost anything (`htp:/bad` as host `htp`, port 4222) and then
    retries it for good; a mistyped setting is refused here, at start, instead.
    """
    servers = [server.strip() for server in url.split(",") if server.strip()]
    if not servers:
        raise ValueError("no NATS server given (nats://host:4222, comma-separated)")
    schemes = {_checked_server_url(server) for server in servers}
    if not (schemes <= _TCP_SCHEMES or schemes <= _WEBSOCKET_SCHEMES):
        raise ValueError("websocket (ws, wss) and nats/tls servers cannot be mixed")
    return url


def _checked_server_url(server: str) -> str:
    """The scheme of one server URL (`nats` when it has none); ValueError if it is none."""
    shown = _without_userinfo(server)
    usage = "a NATS server is nats://host:port (or tls, ws, wss; host:port alone is nats)"
    parts = urlsplit(server if "://" in server else f"nats://{server}")
    if parts.scheme not in _TCP_SCHEMES | _WEBSOCKET_SCHEMES:
        raise ValueError(f"{shown!r}: unknown scheme {parts.scheme!r}; {usage}")
    try:
        port = parts.port
    except ValueError as error:
        raise ValueError(f"{shown!r}: bad port ({error}); {usage}") from None
    if not parts.hostname or port == 0 or parts.path not in ("", "/"):
        raise ValueError(f"{shown!r} is not a server URL; {usage}")
    return parts.scheme


def inbox_prefix(user: str | None) -> str:
    """The inbox prefix of `user`: `_INBOX.<user>`, so its permissions can name its inboxes."""
    return f"{DEFAULT_INBOX_PREFIX}.{user}" if user else DEFAULT_INBOX_PREFIX


@dataclass(frozen=True)
class NatsAccess:
    """The NATS servers, the user and password (none: anonymous) and the CA of their TLS.

    With a user, replies come to the user's own inbox prefix, `_INBOX.<user>`, which
    is all of `_INBOX` its permissions let it subscribe to.
    """

    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    # PEM CA the servers' certificates are checked with; set: TLS is required.
    ca_file: Path | None = None

    def servers(self) -> list[str]:
        """The server URLs, one per comma-separated entry of `url`."""
        return [server.strip() for server in self.url.split(",") if server.strip()]

    def shown(self) -> str:
        """The servers as a message may name them: comma-separated, without user or password."""
        return ",".join(_without_userinfo(server) for server in self.servers())

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client TLS context that checks the server's certificate; None without a CA."""
        if self.ca_file is None:
            return None
        return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))

    def connect_options(self) -> dict[str, Any]:
        """The keyword arguments of nats.connect() for this access (servers included)."""
        options: dict[str, Any] = {
            "servers": self.servers(),
            "inbox_prefix": inbox_prefix(self.user),
        }
        if self.user is not None:
            options["user"] = self.user
            options["password"] = self.password or ""
        context = self.ssl_context()
        if context is not None:
            options["tls"] = context
        return options
