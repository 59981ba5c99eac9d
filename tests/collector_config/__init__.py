"""Offline checks of collector-config/ and docs/operations.md."""
