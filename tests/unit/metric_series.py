"""What a fresh service process serves of its counters, and what docs/metrics.md names for them."""

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

METRICS_DOC = Path(__file__).parents[2] / "docs" / "metrics.md"
Labels = tuple[tuple[str, str], ...]

# farm_grpc_server_handled_total's `method` is known only once the server is wired,
# and a series per method and status code (17 codes) would multiply its size: each
# method's series begins at its first call.
NOT_FIXED = frozenset({"farm_grpc_server_handled_total"})


def fresh_counters(package: str) -> dict[str, set[Labels]]:
    """Each counter a process serves once `package.__main__` is imported, and its series' labels."""
    script = (
        f"import {package}.__main__\n"
        "from prometheus_client import REGISTRY, generate_latest\n"
        "print(generate_latest(REGISTRY).decode())\n"
    )
    served = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    return {
        f"{family.name}_total": {
            tuple(sorted(sample.labels.items()))
            for sample in family.samples
            if sample.name.endswith("_total")
        }
        for family in text_string_to_metric_families(served)
        if family.type == "counter"
    }


def documented_rows(metric: str) -> str:
    """The rows of `metric` in docs/metrics.md's tables (a shared metric has one per service)."""
    rows = METRICS_DOC.read_text(encoding="utf-8").splitlines()
    found = [row for row in rows if row.startswith(f"| `{metric}` |")]
    assert found, f"docs/metrics.md has no row for {metric}"
    return "\n".join(found)


def unserved_fixed_series(
    counters: Mapping[str, set[Labels]], fixed_sets: Mapping[str, Mapping[str, tuple[str, ...]]]
) -> list[str]:
    """The series of `fixed_sets` (metric → label → its values) that `counters` lack.

    Also each labelled counter served without a series that `fixed_sets` does not name,
    and each value docs/metrics.md does not name in the metric's row.
    """
    missing = [
        f"{metric} (no series, and not among the fixed sets)"
        for metric, series in counters.items()
        if not series and metric not in fixed_sets and metric not in NOT_FIXED
    ]
    for metric, labels in fixed_sets.items():
        row = documented_rows(metric)
        missing += [
            f"docs/metrics.md's {metric} does not name {value}"
            for values in labels.values()
            for value in values
            if f"`{value}`" not in row
        ]
        missing += [
            f"{metric}{dict(series)}"
            for series in _combinations(labels)
            if series not in counters[metric]
        ]
    return missing


def _combinations(labels: Mapping[str, tuple[str, ...]]) -> list[Labels]:
    """Every combination of the labels' values, as sorted label pairs."""
    combos: list[Labels] = [()]
    for name, values in labels.items():
        combos = [(*combo, (name, value)) for combo in combos for value in values]
    return [tuple(sorted(combo)) for combo in combos]
