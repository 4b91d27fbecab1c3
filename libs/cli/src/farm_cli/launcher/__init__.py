"""The local launcher: starts and stops the whole farm's processes on one machine."""
