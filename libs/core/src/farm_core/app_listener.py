"""An aiohttp application listening on one TCP address: auth's edge check, an agent's sessions."""

import ssl
from typing import Any

from aiohttp import web


class AppListener:
    """Serves `app` on host:port (0: a free port), with TLS when given a context.

    `handler_options` go to aiohttp's request handler (`max_line_size`, ...). No
    access log (the services log what they decide) and no signal handlers of
    aiohttp's (the service's own SIGTERM handling stops it).
    """

    def __init__(
        self,
        app: web.Application,
        host: str,
        port: int,
        tls: ssl.SSLContext | None = None,
        **handler_options: Any,
    ) -> None:
        self._app = app
        self._host = host
        self._port = port
        self._tls = tls
        self._handler_options = handler_options
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        """The port bound (the one asked for, or the one chosen for 0)."""
        if self._runner is None or not self._runner.addresses:
            return self._port
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        """Listens; raises OSError if the port is taken (nothing is left open then)."""
        runner = web.AppRunner(
            self._app, access_log=None, handle_signals=False, **self._handler_options
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port, ssl_context=self._tls).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def close(self) -> None:
        """Stops listening and ends open connections; idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
