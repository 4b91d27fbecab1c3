"""`import browserfarm` gives every public name, each imported from its module on first use."""

import json
import subprocess
import sys

import browserfarm

IMPORTED_AFTER = """
import json, sys
import browserfarm
{use}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


def _imported_after(use: str) -> set[str]:
    finished = subprocess.run(
        [sys.executable, "-c", IMPORTED_AFTER.format(use=use)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(finished.stdout.splitlines()[-1]))


def test_importing_the_package_or_its_farm_lookup_imports_no_transport() -> None:
    loaded = _imported_after("import browserfarm.local_farm")

    assert loaded.isdisjoint({"grpc", "httpx", "tenacity"}), loaded


def test_a_public_name_brings_its_module_on_first_use() -> None:
    assert {"grpc", "httpx"} <= _imported_after("browserfarm.Client")


def test_every_public_name_is_the_one_its_module_defines() -> None:
    from browserfarm import errors, sync

    assert browserfarm.Client is sync.Client
    assert browserfarm.RateLimited is errors.RateLimited
    assert all(getattr(browserfarm, name) is not None for name in browserfarm.__all__)
    assert set(browserfarm.__all__) <= set(dir(browserfarm))
