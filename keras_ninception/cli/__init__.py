"""The `ninception` command line."""
