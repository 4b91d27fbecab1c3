"""Generated stubs and Envoy's descriptor set must match protos/ (see README: not committed)."""

import filecmp
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUF = str(ROOT / ".venv" / "bin" / "buf")
GENERATED = Path("libs/protos/src/farm")


def _generated_files(base: Path) -> set[Path]:
    # Sources only: `make setup` leaves their bytecode in __pycache__ beside them.
    return {
        path.relative_to(base)
        for path in base.rglob("*_pb2*.py*")
        if path.suffix in (".py", ".pyi")
    }


@pytest.mark.slow
def test_generated_stubs_match_the_protos(tmp_path: Path) -> None:
    subprocess.run([BUF, "generate", "-o", str(tmp_path)], cwd=ROOT, check=True, timeout=120)
    fresh, current = tmp_path / GENERATED, ROOT / GENERATED
    assert _generated_files(fresh) == _generated_files(current), "run `make protos`"
    stale = [
        str(name)
        for name in sorted(_generated_files(fresh))
        if not filecmp.cmp(fresh / name, current / name, shallow=False)
    ]
    assert not stale, f"stale generated files (run `make protos`): {stale}"


def test_envoy_descriptor_set_matches_the_protos(tmp_path: Path) -> None:
    fresh = tmp_path / "farm.binpb"
    subprocess.run(
        [BUF, "build", "--exclude-source-info", "-o", str(fresh)], cwd=ROOT, check=True, timeout=60
    )
    assert fresh.read_bytes() == (ROOT / "envoy" / "farm.binpb").read_bytes(), "run `make protos`"
