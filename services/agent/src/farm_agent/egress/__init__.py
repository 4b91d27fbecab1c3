"""The egress guard: which addresses pages may reach, and the per-task proxy that enforces it."""
