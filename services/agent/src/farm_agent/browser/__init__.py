"""Chromium: the browser pool, the page guard, the actions and the runner of one spec."""
