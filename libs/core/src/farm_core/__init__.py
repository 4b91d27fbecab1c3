"""What the browserfarm services share: settings, gRPC, identity, NATS, SQL, the task contract."""
