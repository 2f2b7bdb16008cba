"""Runtimes that feed the rules: replay over files, and the command line."""
