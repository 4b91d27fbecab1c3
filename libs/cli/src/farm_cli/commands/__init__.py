"""The `farm` command groups, one module each: up, task, artifact, key, whoami, envoy-config."""
