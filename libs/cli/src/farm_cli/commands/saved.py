"""`farm baseline list|approve|delete` and `farm profile list|delete`: what a tenant keeps."""

import argparse

from farm.storage.v1 import baselines_pb2, profiles_pb2
from farm_cli.client import call_and_print, list_and_print
from farm_cli.commands.ranges import add_page_arguments


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `baseline` and `profile` and their verbs."""
    baseline = commands.add_parser("baseline", help="the images screenshots are compared with")
    verbs = baseline.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="list baselines, most recently set first")
    listing.add_argument("--name", default="", help="only the baselines of this name")
    _paging(listing)
    listing.set_defaults(run=list_baselines)
    approve = verbs.add_parser("approve", help="make a screenshot artifact a baseline's image")
    approve.add_argument("id", help="the baseline's id (comparison.baselineId)")
    approve.add_argument("artifact_id", metavar="ARTIFACT_ID", help="the PNG screenshot")
    approve.set_defaults(run=approve_baseline)
    delete = verbs.add_parser("delete", help="delete a baseline; the next screenshot remakes it")
    delete.add_argument("id")
    delete.set_defaults(run=delete_baseline)

    profile = commands.add_parser("profile", help="saved cookies and local storage")
    verbs = profile.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="list profiles, most recently saved first")
    _paging(listing)
    listing.set_defaults(run=list_profiles)
    delete = verbs.add_parser("delete", help="delete a profile; the next use starts empty")
    delete.add_argument("name")
    delete.set_defaults(run=delete_profile)


def _paging(parser: argparse.ArgumentParser) -> None:
    add_page_arguments(parser)


def list_baselines(args: argparse.Namespace) -> int:
    """ListBaselines: one page, or with --all every page in one list."""
    request = baselines_pb2.ListBaselinesRequest(
        name=args.name, page_size=args.page_size, page_token=args.page_token
    )
    return list_and_print(
        lambda farm: farm.baselines.ListBaselines, request, "baselines", every=args.all
    )


def approve_baseline(args: argparse.Namespace) -> int:
    """ApproveBaseline; prints the baseline with its new image."""
    request = baselines_pb2.ApproveBaselineRequest(id=args.id, artifact_id=args.artifact_id)
    return call_and_print(lambda farm: farm.baselines.ApproveBaseline, request)


def delete_baseline(args: argparse.Namespace) -> int:
    """DeleteBaseline."""
    request = baselines_pb2.DeleteBaselineRequest(id=args.id)
    return call_and_print(lambda farm: farm.baselines.DeleteBaseline, request)


def list_profiles(args: argparse.Namespace) -> int:
    """ListProfiles: one page, or with --all every page in one list."""
    request = profiles_pb2.ListProfilesRequest(page_size=args.page_size, page_token=args.page_token)
    return list_and_print(
        lambda farm: farm.profiles.ListProfiles, request, "profiles", every=args.all
    )


def delete_profile(args: argparse.Namespace) -> int:
    """DeleteProfile."""
    request = profiles_pb2.DeleteProfileRequest(name=args.name)
    return call_and_print(lambda farm: farm.profiles.DeleteProfile, request)
