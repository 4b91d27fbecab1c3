"""A fork of the agent's process while gRPC is busy writes nothing to the agent's log.

With gRPC's fork support on, its C core writes a plain line to stderr
(fork_posix.cc: "Other threads are currently calling into gRPC, skipping fork()
handlers") when a fork comes while another thread is in gRPC, breaking "every log
line is JSON" (docs/operations.md). The agent's entry module turns fork support off
before gRPC starts; each check runs in an interpreter of its own, as the agent does.
"""

import os
import subprocess
import sys
import textwrap

# The agent's entry module is imported first, as `python -m farm_agent` runs it; then a
# health server answers calls in gRPC's threads while the process forks (the children
# exit at once, as an exec'd child leaves the agent's Python behind).
BUSY_FORKS = textwrap.dedent(
    """
    import asyncio, os, sys
    {first}
    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    async def main() -> None:
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{{port}}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            calls = asyncio.gather(
                *(stub.Check(health_pb2.HealthCheckRequest()) for _ in range(200))
            )
            for _ in range(20):
                child = os.fork()
                if child == 0:
                    os._exit(0)
                os.waitpid(child, 0)
                await asyncio.sleep(0.005)
            await calls
        await server.stop(None)

    asyncio.run(main())
    print("forked", file=sys.stderr)
    """
)


def stderr_of(first: str) -> list[str]:
    """What a process running BUSY_FORKS after `first` wrote to stderr, line by line."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("GRPC_")}
    ran = subprocess.run(
        [sys.executable, "-c", BUSY_FORKS.format(first=first)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return ran.stderr.splitlines()


def test_forks_amid_grpc_calls_write_no_line_of_grpcs_in_the_agent() -> None:
    assert stderr_of("import farm_agent.__main__") == ["forked"]


def test_forks_amid_grpc_calls_write_grpcs_line_without_the_agents_entry_module() -> None:
    # The check above can fail: without the agent's setting, gRPC writes its lines.
    assert any("fork_posix" in line for line in stderr_of("pass"))
