"""The headers the web console adds to each farm call it makes for a browser.

Auth's edge check believes them only with a valid console credential
(farm_auth.console_clients), and Envoy drops them once a call is let through.
"""

CONSOLE_CREDENTIAL_HEADER = "x-farm-console-credential"
"""The console's own credential (role `console`), on each call it makes for a browser."""
CONSOLE_CLIENT_HEADER = "x-farm-console-client"
"""The IP address of the browser the console makes the call for."""
