"""`farm db status|migrate`: the services' tables' migrations, read or run without the farm.

Each service that owns tables names its migrations (farm_<service>.store) and its
settings (farm_core/schema.py, as `python -m farm_<service>.schema` reads them):
DATABASE_URL or FARM_<SERVICE>_DATABASE_URL, else its SQLite file under FARM_HOME.
They are read and run in this process: a Python start per service took seconds.
"""

import argparse
import asyncio
import functools
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from farm_cli.commands.db_users import LocalFarmUsers, local_farm_users
from farm_cli.commands.status import table
from farm_cli.console import CliError

# In the order an upgrade replaces them (docs/deploy.md, Upgrading).
SERVICES = ("storage", "auth", "scheduler")
UPGRADING = "docs/deploy.md, Upgrading"


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `db` and its verbs."""
    group = commands.add_parser(
        "db",
        help="show or run the migrations of the services' tables (SQLite or PostgreSQL)",
        description="The services that own tables (storage, auth, scheduler) migrate them "
        "when they start. These commands do it without starting them, on the database each "
        "would use: DATABASE_URL or FARM_<SERVICE>_DATABASE_URL, else its SQLite file under "
        "FARM_HOME (default .farm).",
    )
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")
    status = verbs.add_parser(
        "status",
        help="show each service's migration and whether it is behind, current or newer",
        description="Prints each service's tables' migration, this release's newest, and "
        "their state: empty (never migrated), behind (`farm db migrate` or a start "
        "upgrades them), current, or newer (a newer release migrated them: this one will "
        "not start on them). Exit status 1 when any is newer or the database cannot be "
        "reached.",
    )
    migrate = verbs.add_parser(
        "migrate",
        help="bring each service's tables to this release's newest migration, then exit",
        description="Runs the migrations a start would run, one service after another "
        f"({', '.join(SERVICES)}), and stops at the first that fails. Back up first: "
        "migrations only go forward. On PostgreSQL it takes the lock the services take, so "
        "replicas starting meanwhile wait for it. Refused while services of the farm "
        "running on this FARM_HOME use the tables (`farm down` first), unless --force.",
    )
    migrate.add_argument(
        "--force",
        action="store_true",
        help="migrate even though services of the farm running on this FARM_HOME use the tables",
    )
    for verb, run in ((status, show_status), (migrate, run_migrations)):
        verb.add_argument(
            "--service",
            choices=SERVICES,
            action="append",
            help="only this service's tables (repeatable); default: all three",
        )
        verb.add_argument("--json", action="store_true", help="print a JSON list, one per service")
        verb.set_defaults(run=run)


def show_status(args: argparse.Namespace) -> int:
    """Each service's schema version, as a table or JSON; 1 if any is newer than this release."""
    services = args.service or SERVICES
    local = local_farm_users(services)
    if local is not None:
        print(
            f"warning: {in_use_text(local)}; the states shown are those its services "
            "migrated their tables to when they started",
            file=sys.stderr,
            flush=True,
        )
    # Reads only: asked side by side, listed in order.
    with ThreadPoolExecutor(max_workers=len(services)) as pool:
        versions = list(pool.map(functools.partial(_ask, action="show"), services))
    if args.json:
        print(json.dumps(versions, indent=2), flush=True)
    else:
        print(render_versions(versions), flush=True)
    newer = [each for each in versions if each["state"] == "newer"]
    if newer:
        raise CliError("; ".join(newer_text(each) for each in newer))
    return 0


def run_migrations(args: argparse.Namespace) -> int:
    """Migrates each service's tables in turn; prints what each went from and to."""
    local = local_farm_users(args.service or SERVICES)
    if local is not None and not args.force:
        raise CliError(
            f"{in_use_text(local)}: migrating tables under running services changes them "
            "beneath the code they run; stop the farm first (`farm down`), or pass --force"
        )
    outcomes: list[dict[str, Any]] = []
    for service in args.service or SERVICES:
        outcome = _ask(service, "migrate")
        outcomes.append(outcome)
        if not args.json:
            print(migrated_text(outcome), flush=True)
    if args.json:
        print(json.dumps(outcomes, indent=2), flush=True)
    return 0


def render_versions(versions: Sequence[dict[str, Any]]) -> str:
    """The versions as a table, and what to do about any that is not current."""
    rows = [
        (each["service"], each["revision"] or "-", each["newest"], each["state"], each["database"])
        for each in versions
    ]
    lines = table(("SERVICE", "REVISION", "NEWEST", "STATE", "DATABASE"), rows)
    if any(each["state"] in ("empty", "behind") for each in versions):
        lines.append(
            f"Back up, then `farm db migrate` (or start the services) to upgrade ({UPGRADING})."
        )
    return "\n".join(lines)


def migrated_text(outcome: dict[str, Any]) -> str:
    """One line: a service's tables moved from one migration to another, or were current."""
    service, before, after = outcome["service"], outcome["before"], outcome["revision"]
    if before == after:
        return f"{service}: already at {after}, this release's newest"
    return f"{service}: migrated from {before or 'an empty database'} to {after}"


def in_use_text(local: LocalFarmUsers) -> str:
    """Which services of the local farm use the tables, and the farm's FARM_HOME."""
    users = ", ".join(str(user) for user in local.users)
    return f"the farm running on FARM_HOME {local.home} uses these tables: {users}"


def newer_text(version: dict[str, Any]) -> str:
    """Why this release cannot use a service's tables, and the ways out."""
    return (
        f"the {version['service']} tables are at migration {version['revision']}, newer than "
        f"this release's newest ({version['newest']}): a newer release migrated them, and "
        "migrations only go forward. Run that release again, or restore the backup made "
        f"before the upgrade ({UPGRADING})"
    )


def _ask(service: str, action: str) -> dict[str, Any]:
    from farm_core.runtime import StartFailure
    from farm_core.schema import database_settings_from, run_action

    if importlib.util.find_spec(f"farm_{service}") is None:
        raise CliError(f"the {service} service is not installed beside this farm command")
    store = importlib.import_module(f"farm_{service}.store")
    try:
        settings = database_settings_from(service, os.environ)
        work = run_action(action, service, store.MIGRATIONS, store.VERSION_TABLE, settings)
        # A loop of its own, in a thread: the caller may be inside one (main() in a test).
        with ThreadPoolExecutor(max_workers=1) as thread:
            answer: dict[str, Any] = thread.submit(asyncio.run, work).result()
    except StartFailure as failure:
        lines = [line for line in str(failure).splitlines() if line.strip()]
        raise CliError(" ".join(lines) or f"{service} {action} failed") from None
    return answer
