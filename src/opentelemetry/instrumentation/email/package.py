"""Libraries this package instruments.

``_instruments`` is empty on purpose: a library that is not installed is
skipped when its entry point is imported, so an application that only uses
``smtplib`` is never told it has a dependency conflict.
"""

_instruments: tuple[str, ...] = ()
