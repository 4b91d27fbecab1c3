"""The browser agent: pulls tasks from NATS and runs them in Chromium through Playwright."""

from importlib.metadata import version

VERSION = version("farm-agent")
"""The agent's software version, as its heartbeat and `agent_info` tell it."""
