"""The agent installs and imports no SQL stack: farm-core's SQL is the `sql` extra."""

import json
import subprocess
import sys

SQL_MODULES = ("sqlalchemy", "alembic", "aiosqlite", "asyncpg")

IMPORT_EVERY_AGENT_MODULE = f"""
import importlib, json, pkgutil, sys
import farm_agent
names = [info.name for info in pkgutil.walk_packages(farm_agent.__path__, "farm_agent.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({{"imported": names, "sql": [m for m in {SQL_MODULES!r} if m in sys.modules]}}))
"""


def test_importing_every_agent_module_loads_no_sql_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_AGENT_MODULE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcome = json.loads(done.stdout)
    assert "farm_agent.__main__" in outcome["imported"]
    assert "farm_agent.presence" in outcome["imported"]
    assert outcome["sql"] == []
