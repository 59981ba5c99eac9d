"""Expected metric points, in the form ``Telemetry.values`` reads them back."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Tuple

Points = List[Tuple[Dict[str, Any], Any]]


def by_attributes(points: Iterable[Tuple[Dict[str, Any], Any]]) -> Points:
    """(attributes, value) pairs in a stable order: sorted by their attributes."""
    return sorted(points, key=lambda item: json.dumps(item[0], sort_keys=True))


def accepted_recipients(system: str, **by_domain: int) -> Points:
    """``email.client.recipients`` points of accepted recipients, a count by
    mailbox domain (``gmail_com=1`` for gmail.com, ``other=2``)."""
    return by_attributes(
        (
            {
                "email.system": system,
                "email.recipient.status": "accepted",
                "email.recipient.domain": domain.replace("_", "."),
            },
            count,
        )
        for domain, count in by_domain.items()
    )
