"""Farm-wide limits held in NATS KV: circuit breakers per host, host and tenant slots, leases."""
