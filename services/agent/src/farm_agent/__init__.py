"""The browser agent: pulls tasks from NATS and runs them in Chromium through Playwright."""
