"""Every attribute, metric and event name this package emits: the one place
they are written. ``docs/semantic-conventions.md``, the shipped Prometheus
rules and the Grafana dashboards read the same names (contract v1).
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv.attributes import (
    error_attributes,
    http_attributes,
    server_attributes,
)

INSTRUMENTATION_NAME: Final = "opentelemetry.instrumentation.email"

# Span attributes.
EMAIL_SYSTEM: Final = "email.system"
EMAIL_OPERATION_NAME: Final = "email.operation.name"
# Stable OpenTelemetry attributes come from the semantic-conventions package.
SERVER_ADDRESS: Final = server_attributes.SERVER_ADDRESS
SERVER_PORT: Final = server_attributes.SERVER_PORT
EMAIL_MESSAGE_ID: Final = "email.message_id"
EMAIL_PROVIDER_MESSAGE_ID: Final = "email.provider.message_id"
EMAIL_FROM_ADDRESS: Final = "email.from.address"
EMAIL_TO_ADDRESS: Final = "email.to.address"
EMAIL_CC_ADDRESS: Final = "email.cc.address"
EMAIL_BCC_ADDRESS: Final = "email.bcc.address"
EMAIL_RECIPIENT_COUNT: Final = "email.recipient.count"
EMAIL_RECIPIENT_REJECTED_COUNT: Final = "email.recipient.rejected.count"
EMAIL_MESSAGE_SIZE: Final = "email.message.size"
EMAIL_ATTACHMENTS_COUNT: Final = "email.attachments.count"
EMAIL_TEMPLATE_ID: Final = "email.template.id"
EMAIL_SUBJECT: Final = "email.subject"
EMAIL_SMTP_RESPONSE_CODE: Final = "email.smtp.response.code"
HTTP_RESPONSE_STATUS_CODE: Final = http_attributes.HTTP_RESPONSE_STATUS_CODE
ERROR_TYPE: Final = error_attributes.ERROR_TYPE
EMAIL_ERROR_RETRYABLE: Final = "email.error.retryable"
# The kind of mail (order confirmation, password reset), low cardinality.
EMAIL_CATEGORY: Final = "email.category"
OTHER_CATEGORY: Final = "other"
MAX_CATEGORY_LENGTH: Final = 64

# Framework spans (INTERNAL, one per framework call that hands over messages).
EMAIL_FRAMEWORK: Final = "email.framework"
EMAIL_BACKEND: Final = "email.backend"
EMAIL_MESSAGE_COUNT: Final = "email.message.count"
EMAIL_MESSAGE_SENT_COUNT: Final = "email.message.sent.count"
FRAMEWORK_DJANGO: Final = "django"
FRAMEWORK_FLASK_MAIL: Final = "flask_mail"
FRAMEWORK_FASTAPI_MAIL: Final = "fastapi_mail"
FRAMEWORK_REDMAIL: Final = "redmail"
FRAMEWORK_YAGMAIL: Final = "yagmail"
FRAMEWORK_AIOSMTPLIB: Final = "aiosmtplib"

# Metric-only attributes.
EMAIL_RECIPIENT_STATUS: Final = "email.recipient.status"
EMAIL_RECIPIENT_DOMAIN: Final = "email.recipient.domain"
RECIPIENT_ACCEPTED: Final = "accepted"
RECIPIENT_REJECTED: Final = "rejected"

# Span event for a recipient refused while the message still went out, and
# the attributes it carries.
EVENT_RECIPIENT_REJECTED: Final = "email.recipient.rejected"
EVENT_RECIPIENT_ADDRESS: Final = "email.recipient.address"
MAX_REJECTED_EVENTS: Final = 100
MAX_ADDRESSES_PER_ATTRIBUTE: Final = 20
MAX_SUBJECT_LENGTH: Final = 128
# Identifiers come from messages and server replies, which an attacker may
# write: each attribute holding one is cut to a bounded length.
MAX_ID_LENGTH: Final = 256  # email.message_id, email.template.id
MAX_PROVIDER_IDS_LENGTH: Final = 1024  # email.provider.message_id (up to 20 ids)
MAX_SERVER_ADDRESS_LENGTH: Final = 255  # a DNS name's limit

# Log record.
LOG_EVENT_NAME: Final = "email.send.result"
LOG_DURATION: Final = "email.duration"
LOG_REJECTED_RECIPIENTS: Final = "email.recipient.rejected"

# Operations (email.operation.name).
OP_SEND: Final = "send"
OP_SEND_BATCH: Final = "send_batch"
OP_CONNECT: Final = "connect"
OP_STARTTLS: Final = "starttls"
OP_LOGIN: Final = "login"

# Metrics.
METRIC_OPERATION_DURATION: Final = "email.client.operation.duration"
METRIC_SENT_MESSAGES: Final = "email.client.sent.messages"
METRIC_RECIPIENTS: Final = "email.client.recipients"
METRIC_MESSAGE_SIZE: Final = "email.client.message.size"
DURATION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Transactional mail is mostly a few KB; attachments push it to the
# provider limits (10 MB SES, 25 MB Gmail, 40 MB SES v2, 50 MB some MTAs).
SIZE_BUCKETS: Final = (
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    10485760,
    26214400,
    52428800,
)

# error.type values that are not an SMTP or HTTP code or a class name.
ERROR_TIMEOUT: Final = "timeout"
ERROR_CONNECTION_REFUSED: Final = "connection_refused"
ERROR_SERVER_DISCONNECTED: Final = "server_disconnected"
ERROR_SECURE_CONNECTION: Final = "secure_connection_error"
ERROR_NAME_RESOLUTION: Final = "name_resolution_error"
ERROR_REJECTED: Final = "rejected"
ERROR_CANCELLED: Final = "cancelled"
# All of them: the contract's own words, never a provider's.
FIXED_ERROR_TYPES: Final = frozenset(
    {
        ERROR_TIMEOUT,
        ERROR_CONNECTION_REFUSED,
        ERROR_SERVER_DISCONNECTED,
        ERROR_SECURE_CONNECTION,
        ERROR_NAME_RESOLUTION,
        ERROR_REJECTED,
        ERROR_CANCELLED,
    }
)

# email.system values.
SYSTEM_SMTP: Final = "smtp"
SYSTEM_SES: Final = "ses"
SYSTEM_SENDGRID: Final = "sendgrid"
SYSTEM_RESEND: Final = "resend"
SYSTEM_MAILGUN: Final = "mailgun"
SYSTEM_POSTMARK: Final = "postmark"
SYSTEM_MAILJET: Final = "mailjet"
SYSTEM_MANDRILL: Final = "mandrill"
SYSTEM_BREVO: Final = "brevo"
SYSTEM_SPARKPOST: Final = "sparkpost"
SYSTEM_AZURE_COMMUNICATION_EMAIL: Final = "azure_communication_email"
SYSTEM_MAILERSEND: Final = "mailersend"
SYSTEM_ALIYUN_DIRECTMAIL: Final = "aliyun_directmail"
SYSTEM_TENCENT_SES: Final = "tencent_ses"
SYSTEM_MAILTRAP: Final = "mailtrap"
SYSTEM_ELASTIC_EMAIL: Final = "elastic_email"

# -- Delivery events (contract v2, "Delivery events") ---------------------------------------

# Propagation: what a send carries in the provider's custom-data field.
PROPAGATE_METADATA: Final = "metadata"  # fields recipients never see (the default)
PROPAGATE_HEADERS: Final = "headers"  # also a header recipients can see
PROPAGATE_NONE: Final = "none"
PROPAGATE_MODES: Final = (PROPAGATE_METADATA, PROPAGATE_HEADERS, PROPAGATE_NONE)
# The keys, in every provider's custom data: short (Postmark keys), made of
# [a-z_] (Mandrill, Resend and SES tag names); the values are a W3C
# traceparent (55 characters of hex and dashes) and the send time in Unix
# milliseconds (digits): both fit every provider's character set.
PROPAGATION_TRACEPARENT: Final = "otel_traceparent"
PROPAGATION_SENT_AT: Final = "otel_sent_at"
# The headers, with PROPAGATE_HEADERS, on SMTP and header-based providers.
PROPAGATION_TRACEPARENT_HEADER: Final = "X-Otel-Traceparent"
PROPAGATION_SENT_AT_HEADER: Final = "X-Otel-Sent-At"

# Span (CONSUMER, "deliver {email.system}") and metric attributes.
EMAIL_DELIVERY_EVENT: Final = "email.delivery.event"
EMAIL_DELIVERY_BOUNCE_TYPE: Final = "email.delivery.bounce.type"
EMAIL_DELIVERY_TIME: Final = "email.delivery.time"
EMAIL_SMTP_ENHANCED_STATUS: Final = "email.smtp.enhanced_status"
OP_DELIVER: Final = "deliver"

# email.delivery.event values.
DELIVERED: Final = "delivered"
BOUNCED: Final = "bounced"
DEFERRED: Final = "deferred"
REJECTED: Final = "rejected"
COMPLAINED: Final = "complained"
OPENED: Final = "opened"
CLICKED: Final = "clicked"
UNSUBSCRIBED: Final = "unsubscribed"
DELIVERY_EVENTS: Final = (
    DELIVERED,
    BOUNCED,
    DEFERRED,
    REJECTED,
    COMPLAINED,
    OPENED,
    CLICKED,
    UNSUBSCRIBED,
)
# email.delivery.bounce.type values.
BOUNCE_HARD: Final = "hard"
BOUNCE_SOFT: Final = "soft"
BOUNCE_UNDETERMINED: Final = "undetermined"

# Metrics.
METRIC_DELIVERY_EVENTS: Final = "email.delivery.events"
METRIC_DELIVERY_DURATION: Final = "email.delivery.duration"
METRIC_WEBHOOKS_REFUSED: Final = "email.delivery.webhooks.refused"
DELIVERY_DURATION_BUCKETS: Final = (1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 21600, 86400)
# error.type of a refused webhook call.
REFUSED_SIGNATURE: Final = "signature"
REFUSED_CREDENTIALS: Final = "credentials"
REFUSED_STALE: Final = "stale"
REFUSED_MALFORMED: Final = "malformed"

# Log record.
LOG_DELIVERY_EVENT_NAME: Final = "email.delivery.result"
