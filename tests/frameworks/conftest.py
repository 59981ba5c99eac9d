"""Django configured once for the framework tests: no project, no database,
just the mail settings each test overrides through its connection."""

from __future__ import annotations

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        DEFAULT_FROM_EMAIL="Shop <orders@shop.example>",
        USE_TZ=True,
    )
    django.setup()
