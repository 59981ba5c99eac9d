"""Adapters for email providers' HTTP API SDKs, one module per SDK.

Each module imports its SDK at the top, so a missing SDK makes its entry
point's import fail and it is skipped quietly.
"""
