"""The answers of a job's invoices already extracted, kept with the job across its hand-backs (the ledger's
``kept_answers`` column, migration 0008).

A throttled job is handed back whole; without this, every hand-back would extract (and bill) again the invoices
that were answered before the throttled one. An answer is reused only for the same invoice of the same job: the
same ``invoice_index`` AND the same source location (an order whose ``invoice_image`` changed meanwhile is read
again). The ledger discards them when the job commits or fails (:mod:`invoice_pipeline.tables.ledger`,
:mod:`invoice_pipeline.tables.items`). An answer that no longer reads (an older shape after a deploy) is dropped, never
an error: the invoice is extracted again.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from invoice_pipeline.extractor import ExtractedInvoice
from invoice_pipeline.observability import logger


@dataclass(frozen=True)
class KeptAnswer:
    source: str  # the invoice's location as parsed from `invoice_image` (str of urls.Location)
    invoice: ExtractedInvoice


@cache
def _adapter() -> TypeAdapter[ExtractedInvoice]:
    # Built on first use: the handlers' cold start does not pay for it.
    return TypeAdapter(ExtractedInvoice)


def answers_json(answers: Mapping[int, KeptAnswer]) -> str | None:
    """The answers as the ledger keeps them (None when there are none: the column keeps what it had)."""
    if not answers:
        return None
    return json.dumps(
        [
            {
                "invoice_index": index,
                "source": kept.source,
                # What the provider said of its limits was used when the answer came; it is not kept.
                "answer": _adapter().dump_python(dataclasses.replace(kept.invoice, rate_limits=None), mode="json"),
            }
            for index, kept in sorted(answers.items())
        ]
    )


def answers_from_json(value: Any) -> dict[int, KeptAnswer]:
    """The answers read back from the ledger (pg8000 hands jsonb over parsed); unreadable entries are dropped."""
    if not isinstance(value, list):
        return {}
    answers: dict[int, KeptAnswer] = {}
    for entry in value:
        try:
            invoice = _adapter().validate_python(entry["answer"])
            answers[int(entry["invoice_index"])] = KeptAnswer(str(entry["source"]), invoice)
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            logger.warning("a kept answer no longer reads: its invoice is extracted again", extra={"error": str(error)})
    return answers
