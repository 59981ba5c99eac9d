"""``python -m opentelemetry.instrumentation.email doctor [--json]``."""

from __future__ import annotations

import sys

from opentelemetry.instrumentation.email._doctor import main

if __name__ == "__main__":
    sys.exit(main())
