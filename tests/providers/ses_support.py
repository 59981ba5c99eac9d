"""What the SES tests share: one moto server for the test process, clients
pointed at it or at the local provider server, and SES responses recorded
from the API reference (query-protocol XML for v1, REST-JSON for v2), for
what moto does not serve: v2 templates and bulk, throttling, 5xx, auth."""

from __future__ import annotations

import atexit
import functools
import logging
from typing import Any, Dict, Optional

import boto3
from botocore.config import Config

from tests.support.smtp_server import free_port

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
# botocore retries throttling and 5xx by default; the tests that want one
# HTTP attempt per call say so.
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})
# Verified in moto: any sender at this domain may send.
SENDER_DOMAIN = "shop.example"

# Real SES ids look like this: hex time, a UUID, and a counter.
MESSAGE_ID = "0100018f3a5b7c2d-1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d-000000"
MESSAGE_ID_2 = "0100018f3a5b7c2d-6f5e4d3c-2b1a-4c9d-8e7f-5d4c3b2a1f0e-000000"
REQUEST_ID = "d5964849-c866-11e0-9beb-01a62d68c57f"


@functools.cache
def moto_url() -> str:
    """moto's SES and SESv2 in server mode, started once per test process."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    atexit.register(server.stop)
    url = f"http://127.0.0.1:{port}"
    client("ses", url).verify_domain_identity(Domain=SENDER_DOMAIN)
    return url


def client(service: str, url: str, config: Optional[Config] = None) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        config=config or NO_RETRIES,
        **CREDENTIALS,
    )


def aio_client(service: str, url: str, config: Optional[Config] = None) -> Any:
    """An aiobotocore client context manager (``async with``)."""
    from aiobotocore.session import get_session

    return get_session().create_client(
        service,
        endpoint_url=url,
        region_name=REGION,
        config=config or NO_RETRIES,
        **CREDENTIALS,
    )


# -- what the SES tests send ---------------------------------------------------------

SIMPLE = {"Subject": {"Data": "Qx order"}, "Body": {"Text": {"Data": "Qx body"}}}


def v1_params(**overrides: Any) -> Dict[str, Any]:
    """SendEmail's parameters: the SIMPLE message from orders@shop.example to
    alice@example.org, with ``overrides`` in their place."""
    params: Dict[str, Any] = {
        "Source": "orders@shop.example",
        "Destination": {"ToAddresses": ["alice@example.org"]},
        "Message": SIMPLE,
    }
    params.update(overrides)
    return params


# -- SES v1: query protocol, XML ------------------------------------------------------

V1_PATH = r"^/$"
_NS = "http://ses.amazonaws.com/doc/2010-12-01/"
XML = {"Content-Type": "text/xml", "x-amzn-RequestId": REQUEST_ID}


def v1_result(action: str, result: str) -> bytes:
    return (
        f'<{action}Response xmlns="{_NS}">'
        f"<{action}Result>{result}</{action}Result>"
        f"<ResponseMetadata><RequestId>{REQUEST_ID}</RequestId></ResponseMetadata>"
        f"</{action}Response>"
    ).encode()


def v1_error(code: str, message: str, kind: str = "Sender") -> bytes:
    return (
        f'<ErrorResponse xmlns="{_NS}">'
        f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        f"<RequestId>{REQUEST_ID}</RequestId>"
        f"</ErrorResponse>"
    ).encode()


V1_SEND = v1_result("SendEmail", f"<MessageId>{MESSAGE_ID}</MessageId>")


def v1_bulk(*entries: Dict[str, str]) -> bytes:
    members = "".join(
        "<member>" + "".join(f"<{k}>{v}</{k}>" for k, v in entry.items()) + "</member>"
        for entry in entries
    )
    return v1_result("SendBulkTemplatedEmail", f"<Status>{members}</Status>")


# -- SESv2: REST-JSON ---------------------------------------------------------------

V2_SEND_PATH = r"^/v2/email/outbound-emails$"
V2_BULK_PATH = r"^/v2/email/outbound-bulk-emails$"
JSON = {"x-amzn-RequestId": REQUEST_ID}


def v2_error_headers(code: str) -> Dict[str, str]:
    return {
        **JSON,
        "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.sesv2/",
    }


# Texts as SES writes them: they quote addresses, which must never be exported.
NOT_VERIFIED = (
    "Email address is not verified. The following identities failed the check "
    "in region US-EAST-1: qxsecret@corp.example"
)
