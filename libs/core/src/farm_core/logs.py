"""Logging set-up shared by the services: one line per record, named by service."""

import logging
import sys


def configure_logging(service: str, level: str = "INFO") -> None:
    """Sends log records to stderr as `time level service logger: message`."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s",
        force=True,
    )
    # grpc and nats are chatty at INFO about reconnects that the services log themselves.
    logging.getLogger("nats").setLevel(max(logging.WARNING, logging.getLogger().level))
