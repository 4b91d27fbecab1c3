"""A free TCP port for a process to bind: the launcher's services, an agent's session browsers."""

import os
import random
import socket

# "low-high": free_port picks from these ports instead of the kernel's ephemeral ones,
# which outgoing connections take too (tests set it, a range per pytest worker).
PORT_RANGE_ENV = "FARM_FREE_PORT_RANGE"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (from FARM_FREE_PORT_RANGE when set)."""
    chosen = os.environ.get(PORT_RANGE_ENV, "")
    if chosen:
        low, _, high = chosen.partition("-")
        for _ in range(200):
            port = random.randint(int(low), int(high))
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    continue
                return port
        raise OSError(f"no free port in {PORT_RANGE_ENV}={chosen}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
