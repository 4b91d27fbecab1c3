"""The scheduler service: accepts tasks, queues them on JetStream, tracks their state."""
