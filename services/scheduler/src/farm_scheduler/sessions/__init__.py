"""Sessions: SessionService, their rows, placing them on agents, orders to agents, closes."""
