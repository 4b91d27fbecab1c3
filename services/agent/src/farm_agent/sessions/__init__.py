"""Interactive sessions: a browser per session, driven by commands and by attached clients."""
