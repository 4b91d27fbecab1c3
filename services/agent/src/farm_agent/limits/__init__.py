"""Farm-wide limits in NATS KV: host breakers, host and tenant slots, what an attempt passes."""
