"""`farm artifact get|list`: the ArtifactService."""

import argparse
import json
import sys
from pathlib import Path

from farm.storage.v1 import artifacts_pb2
from farm_cli.client import call_and_print, call_farm
from farm_cli.commands.ranges import add_page_arguments
from farm_cli.console import CliError, UsageError


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Adds `artifact` and its verbs."""
    group = commands.add_parser("artifact", help="fetch what tasks produced")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    get = verbs.add_parser("get", help="print an artifact's metadata, or with -o its bytes")
    get.add_argument("id")
    get.add_argument(
        "-o", "--output", metavar="FILE", help="write the bytes to FILE (- for stdout)"
    )
    get.add_argument(
        "--json", action="store_true", help="with -o FILE: print what was written, as JSON"
    )
    get.set_defaults(run=get_artifact)

    listing = verbs.add_parser("list", help="list artifacts, newest first")
    listing.add_argument("--task", default="", help="only this task's artifacts")
    add_page_arguments(listing, every_page=False)
    listing.set_defaults(run=list_artifacts)


def get_artifact(args: argparse.Namespace) -> int:
    """GetArtifact, or GetArtifactContent written to a file or stdout."""
    if args.output is None:
        request = artifacts_pb2.GetArtifactRequest(id=args.id)
        return call_and_print(lambda farm: farm.artifacts.GetArtifact, request)
    if args.output == "-" and args.json:
        raise UsageError("-o - writes the bytes to stdout: it does not go with --json")
    content_request = artifacts_pb2.GetArtifactContentRequest(id=args.id)
    body = call_farm(lambda farm: farm.artifacts.GetArtifactContent, content_request)
    if args.output == "-":
        sys.stdout.buffer.write(body.data)
        sys.stdout.buffer.flush()
        return 0
    write_file(Path(args.output), body.data)
    if args.json:
        written = {"id": args.id, "path": args.output, "contentType": body.content_type}
        print(json.dumps({**written, "sizeBytes": str(len(body.data))}), flush=True)
    return 0


def write_file(path: Path, data: bytes) -> None:
    """Writes `data` to `path` whole or not at all (the SDK's write_whole), naming a failure."""
    from browserfarm.files import write_whole  # the SDK only for the commands that call

    try:
        write_whole(path, data)
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}") from error


def list_artifacts(args: argparse.Namespace) -> int:
    """ListArtifacts."""
    request = artifacts_pb2.ListArtifactsRequest(
        task_id=args.task, page_size=args.page_size, page_token=args.page_token
    )
    return call_and_print(lambda farm: farm.artifacts.ListArtifacts, request)
