"""The console's pages, one module each, every one exporting its `routes`."""
