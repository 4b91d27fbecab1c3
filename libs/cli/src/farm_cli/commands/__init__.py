"""The `farm` command groups, one module each.

up, status, task, artifact, key, tenant, whoami, agent, deadletter, audit, envoy-config.
"""
