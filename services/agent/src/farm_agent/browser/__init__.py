"""Chromium: the pool (fresh and warm contexts), page guard, actions, a spec's runner."""
