"""OpenTelemetry instrumentation for sending email.

One call instruments every supported mail library that is installed::

    from opentelemetry.instrumentation.email import EmailInstrumentor

    EmailInstrumentor().instrument()          # spans, metrics, logs for every send
    EmailInstrumentor().instrument(capture_addresses="domain", capture_subject=False)
    EmailInstrumentor().uninstrument()        # restores every patched callable

or, with no code change, ``opentelemetry-instrument python app.py`` (one entry
point per library, so ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=smtplib`` turns
off exactly that one).

Keyword arguments: ``tracer_provider``, ``meter_provider``,
``logger_provider``, ``request_hook(span, attempt)``,
``response_hook(span, attempt, result_or_exception)``, ``capture_addresses``
(``masked``, ``domain``, ``hashed``, ``full``, ``none``), ``hash_key``,
``capture_subject``, ``emit_logs``, ``category_header``, ``category_limit``.
See ``docs/configuration.md``.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any, Collection, Dict

from opentelemetry.instrumentation.environment_variables import (
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS,
)
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]

from opentelemetry.instrumentation.email._attempt import EmailAttempt
from opentelemetry.instrumentation.email._instrumentor import (
    SHARED_TELEMETRY,
    telemetry_from_kwargs,
)
from opentelemetry.instrumentation.email.package import _instruments
from opentelemetry.instrumentation.email.version import __version__

__all__ = ["LIBRARIES", "EmailAttempt", "EmailInstrumentor", "__version__"]

_logger = logging.getLogger(__name__)

# Entry point name -> instrumentor, as pyproject.toml declares them (a test
# keeps the two in step).
LIBRARIES: Dict[str, str] = {
    "smtplib": "opentelemetry.instrumentation.email.smtplib:SmtplibInstrumentor",
    "aiosmtplib": "opentelemetry.instrumentation.email.aiosmtplib:AiosmtplibInstrumentor",
    "ses": "opentelemetry.instrumentation.email.providers.ses:SesInstrumentor",
    "sendgrid": "opentelemetry.instrumentation.email.providers.sendgrid:SendgridInstrumentor",
    "resend": "opentelemetry.instrumentation.email.providers.resend:ResendInstrumentor",
    "mailgun": "opentelemetry.instrumentation.email.providers.mailgun:MailgunInstrumentor",
    "postmark": "opentelemetry.instrumentation.email.providers.postmark:PostmarkInstrumentor",
    "mailjet": "opentelemetry.instrumentation.email.providers.mailjet:MailjetInstrumentor",
    "mandrill": "opentelemetry.instrumentation.email.providers.mandrill:MandrillInstrumentor",
    "brevo": "opentelemetry.instrumentation.email.providers.brevo:BrevoInstrumentor",
    "sparkpost": "opentelemetry.instrumentation.email.providers.sparkpost:SparkpostInstrumentor",
    "azure_communication_email": (
        "opentelemetry.instrumentation.email.providers.azure_communication_email"
        ":AzureCommunicationEmailInstrumentor"
    ),
    "mailersend": "opentelemetry.instrumentation.email.providers.mailersend:MailersendInstrumentor",
    "aliyun_directmail": (
        "opentelemetry.instrumentation.email.providers.aliyun_directmail"
        ":AliyunDirectmailInstrumentor"
    ),
    "tencent_ses": (
        "opentelemetry.instrumentation.email.providers.tencent_ses:TencentSesInstrumentor"
    ),
    "mailtrap": "opentelemetry.instrumentation.email.providers.mailtrap:MailtrapInstrumentor",
    "elastic_email": (
        "opentelemetry.instrumentation.email.providers.elastic_email:ElasticEmailInstrumentor"
    ),
    "http_api": "opentelemetry.instrumentation.email.providers.http_api:HttpApiInstrumentor",
    "django_mail": "opentelemetry.instrumentation.email.django_mail:DjangoMailInstrumentor",
    "anymail": "opentelemetry.instrumentation.email.anymail:AnymailInstrumentor",
    "flask_mail": "opentelemetry.instrumentation.email.flask_mail:FlaskMailInstrumentor",
    "fastapi_mail": "opentelemetry.instrumentation.email.fastapi_mail:FastapiMailInstrumentor",
    "redmail": "opentelemetry.instrumentation.email.redmail:RedmailInstrumentor",
    "yagmail": "opentelemetry.instrumentation.email.yagmail:YagmailInstrumentor",
}


def _load(target: str) -> Any:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


class EmailInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Instruments every supported mail library that is installed.

    Idempotent; libraries already instrumented (by ``opentelemetry-instrument``
    or an earlier call) are left as they are, and names listed in
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` are skipped.

    >>> from opentelemetry.instrumentation.email import EmailInstrumentor
    >>> EmailInstrumentor().instrument(capture_subject=True)  # doctest: +SKIP
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        disabled = {
            name.strip()
            for name in os.environ.get(OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, "").split(",")
        }
        # One validated settings object and one telemetry core for every
        # library: a bad value warns once, and the instruments exist once.
        kwargs = {**kwargs, SHARED_TELEMETRY: telemetry_from_kwargs(kwargs)}
        for name, target in LIBRARIES.items():
            if name in disabled:
                continue
            try:
                instrumentor = _load(target)()
            except ImportError as exc:
                _logger.debug("email: %s is not installed, skipped (%s)", name, exc)
                continue
            if instrumentor.is_instrumented_by_opentelemetry:
                continue
            instrumentor.instrument(**kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        for target in LIBRARIES.values():
            try:
                instrumentor = _load(target)()
            except ImportError:
                continue
            if instrumentor.is_instrumented_by_opentelemetry:
                instrumentor.uninstrument(**kwargs)
