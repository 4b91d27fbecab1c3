"""End-to-end tests of traces, on one traced farm of their own (see conftest.py)."""
