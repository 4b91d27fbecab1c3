"""The `farm` command groups, one module each.

up, status, task, artifact, key, tenant, whoami, agent, deadletter, audit, envoy-config.

`farm` builds every group's parser on each start, so a module here imports at its top
only what its parser needs (argparse, the option ranges, protobuf messages); what a
command runs on (grpc through farm_cli.client, the SDK, the launcher, rich, jwt) is
imported by the function that runs it. tests/unit/cli/test_cli_imports.py holds this.
"""
