"""What the browserfarm services share: settings, gRPC bootstrap, identity, NATS and SQL."""
