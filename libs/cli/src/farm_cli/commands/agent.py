"""`farm agent list|drain|restart`: the fleet of agents, through the AdminService.

`restart` is for the local farm's agents alone, through its launcher (agent_restart.py).
"""

import argparse

from farm.admin.v1 import admin_pb2
from farm_cli.client import call_and_print
from farm_cli.commands import agent_restart


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `agent` and its verbs."""
    group = commands.add_parser(
        "agent",
        help="list and drain agents (needs the admin scope of the bootstrap tenant); restart "
        "the local farm's",
    )
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    listing = verbs.add_parser("list", help="list the agents that sent a heartbeat lately")
    listing.set_defaults(run=list_agents)

    drain = verbs.add_parser(
        "drain", help="tell an agent to stop taking work, finish what it holds and exit"
    )
    drain.add_argument("id")
    drain.set_defaults(run=drain_agent)
    agent_restart.add_parser(verbs)


def list_agents(args: argparse.Namespace) -> int:
    """ListAgents."""
    return call_and_print(lambda farm: farm.admin.ListAgents, admin_pb2.ListAgentsRequest())


def drain_agent(args: argparse.Namespace) -> int:
    """DrainAgent."""
    request = admin_pb2.DrainAgentRequest(id=args.id)
    return call_and_print(lambda farm: farm.admin.DrainAgent, request)
