"""Callbacks (webhooks): a final task POSTed to its spec's callback URL, signed and retried.

`attempts` holds what a delivery attempt is and how the next one is planned, `rows`
the SQL of pending callbacks and their attempts, `secrets` the tenants' signing
secrets, `sender` one signed POST behind the address policy, and `deliverer` the
loop that finds due callbacks and delivers them.
"""
