"""Which network addresses the farm may reach on a user's behalf: pages (the agents) and callbacks.

The agent's egress proxy and the scheduler's webhook sender share one policy: deny
loopback, private, link-local, metadata and the farm's own ports unless an
allow-list opens them.
"""
