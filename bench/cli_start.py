"""CPU of starting the `farm` command: --help, a parse, a failed call, and `farm mcp`.

Each figure is the user + system CPU of a fresh `farm` process (its children
included), the best of --runs: the part of a start a shared machine's load moves
least. `farm mcp` is measured until it has answered MCP's `initialize` on stdio.
With --baseline CHECKOUT, the same runs with that checkout's libs/ first on
PYTHONPATH come first (`git worktree add /tmp/before main`), run for run.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

FARM = str(Path(sys.executable).parent / "farm")
COMMANDS = (["--help"], ["mcp", "--help"], ["task", "get", "--help"], ["task", "get", "t_1"])
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def command_cpu(argv: Sequence[str], env: Mapping[str, str]) -> float:
    """CPU seconds of one `farm argv` run to its end."""
    before = _children_cpu()
    subprocess.run([FARM, *argv], env=env, capture_output=True, timeout=120, check=False)
    return _children_cpu() - before


def mcp_cpu(env: Mapping[str, str]) -> float:
    """CPU seconds of `farm mcp` from its start until it answered `initialize` (and exited)."""
    before = _children_cpu()
    with subprocess.Popen(
        [FARM, "mcp"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as server:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write(json.dumps(INITIALIZE).encode() + b"\n")
        server.stdin.flush()
        answer = json.loads(server.stdout.readline())
        server.stdin.close()
        server.wait(timeout=60)
    if "result" not in answer:
        raise SystemExit(f"farm mcp did not answer initialize: {answer}")
    return _children_cpu() - before


def environments(baseline: Path | None) -> dict[str, dict[str, str]]:
    """The environment of each way measured; no farm listens at FARM_URL (a failed call)."""
    env = {**os.environ, "FARM_URL": "127.0.0.1:1", "FARM_API_KEY": "bench"}
    if baseline is None:
        return {"now": env}
    sources = [str(path) for path in sorted((baseline / "libs").glob("*/src"))]
    return {"baseline": {**env, "PYTHONPATH": os.pathsep.join(sources)}, "now": env}


def main() -> None:
    """Prints the best CPU time of each start, per way measured."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="a checkout to compare with")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f}; best of {args.runs} runs, CPU seconds")
    ways = environments(args.baseline)
    for argv in COMMANDS:
        for way, env in ways.items():
            best = min(command_cpu(argv, env) for _ in range(args.runs))
            print(f"farm {' '.join(argv):<22} {way:<9} {best:.2f}")
    for way, env in ways.items():
        best = min(mcp_cpu(env) for _ in range(args.runs))
        print(f"{'farm mcp to initialize':<27} {way:<9} {best:.2f}")


if __name__ == "__main__":
    main()
