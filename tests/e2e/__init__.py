"""End-to-end tests: the whole farm through Envoy (a package, so its farm can be package-scoped)."""
