"""The farm command: the local launcher (farm up) and the user CLI."""
