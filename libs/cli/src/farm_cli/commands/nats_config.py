"""`farm nats-config`: nats-server's users and permissions for a deployment of the farm."""

import argparse
import sys
from pathlib import Path

from farm_cli.commands.ranges import whole_number

# Users agent-1..agent-N: more than a deployment runs would only make a config nats-server
# reads slowly (a user costs about 1 KiB, with its permissions).
MAX_AGENT_USERS = 1000


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `nats-config`."""
    render = commands.add_parser(
        "nats-config",
        help="print nats-server's users and permissions for your own NATS",
        description="Renders the `authorization` block of nats-server's config from the "
        "farm's role table (farm_core/nats_roles.py): users scheduler, auth, storage and "
        "the agents'. Each password is nats-server's $NATS_PASSWORD_<USER> from its own "
        "environment (letters, digits, '-' and '_' only, starting with a letter), which "
        "the process connecting as that user gets as NATS_PASSWORD. Include the output "
        "in the server's config (`include users.conf`).",
    )
    render.add_argument(
        "--agents",
        type=whole_number(MAX_AGENT_USERS),
        default=0,
        metavar="N",
        help="a user per agent, agent-1..agent-N (run each with FARM_AGENT_ID equal to its "
        f"user; N at most {MAX_AGENT_USERS}); 0 (default): one user `agent` shared by every "
        "agent",
    )
    render.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    render.set_defaults(run=print_nats_config)


def print_nats_config(args: argparse.Namespace) -> int:
    """Renders the users to stdout or --output."""
    # Imported here: the role table comes with farm_core's NATS helpers, and nats-py.
    from farm_cli.launcher.nats_users import deployment_users, render_deployment_config

    text = render_deployment_config(deployment_users(args.agents))
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text)
    return 0
