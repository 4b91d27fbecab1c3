"""The auth service: tenants, API keys, WhoAmI, and the check Envoy makes on every request."""
