"""The `farm` command groups, one module each.

up, task, artifact, key, tenant, whoami, agent, deadletter, audit, envoy-config.
"""
