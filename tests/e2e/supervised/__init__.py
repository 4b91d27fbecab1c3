"""End-to-end tests that kill, stop and drain a farm's parts, on one supervised farm of their
own (see conftest.py)."""
