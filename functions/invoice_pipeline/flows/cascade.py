"""Cascades: an ``LLM_MODELS`` entry ``FIRST>SECOND[>THIRD]`` reads each invoice with its first stage, and passes the
invoice on to the next stage only when the answer's own evidence does not hold (docs/cascade.md).

What this module owns: the rule that accepts a stage's answer (:func:`accepts`), the answer an invoice ends with
(:func:`final_answer`: the accepted one, or the last stage's as it is, with the tokens and cost of every stage that
read it), and the stage answers kept with a job while it waits (throttled, a configuration error, a transient
failure), so that the next delivery goes on at the stage where this one stopped and no stage reads an invoice twice.
The consumer (:mod:`invoice_pipeline.flows.consume`) calls the stages; this module calls nothing.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from pydantic import TypeAdapter, ValidationError

from invoice_pipeline.extractor import ExtractedInvoice
from invoice_pipeline.observability import logger
from invoice_pipeline.tables.evidence import invoice_evidence, line_evidence


def accepts(invoice: ExtractedInvoice) -> bool:
    """A stage's answer is kept when its invoice-level evidence holds: it has lines, every line's arithmetic holds
    (quantity x unit price = line total), the lines add up to the total the invoice prints for them, no invoice
    check failed and no line is doubtful (:mod:`invoice_pipeline.tables.evidence`, docs/trust.md). A line printed
    without quantity or unit price (a lump sum) has no arithmetic that holds, so its invoice goes on to the next stage:
    read as a lump sum it lacks the quantity and unit price the invoice states elsewhere (docs/cascade.md)."""
    if not invoice.items:
        return False
    whole = invoice_evidence(invoice)
    if whole.failed or "invoice_total" not in whole.passed:
        return False
    return all(
        "arithmetic" in line.passed and line.trust != "doubtful"
        for line in line_evidence(invoice, invoice_checks=whole)
    )


@dataclass(frozen=True)
class StageAnswer:
    """What one stage read of one invoice of the job."""

    invoice_index: int
    source: str  # the invoice's location as parsed from `invoice_image`: an answer is reused for the same one only
    stage: str
    invoice: ExtractedInvoice


def next_stage(stages: Sequence[str], answers: Sequence[StageAnswer]) -> int | None:
    """The index of the stage that reads the invoice next, given its answers so far in stage order; None when the
    invoice has its answer (the last answer was accepted, or came from the last stage)."""
    if not answers:
        return 0
    last = answers[-1]
    position = stages.index(last.stage)
    if position == len(stages) - 1 or accepts(last.invoice):
        return None
    return position + 1


def final_answer(answers: Sequence[StageAnswer]) -> ExtractedInvoice:
    """The invoice's answer: its last stage's, carrying the tokens and cost of every stage that read it (the cost is
    unknown, None, when any stage's is)."""
    last = answers[-1].invoice
    costs = [answer.invoice.cost_usd for answer in answers]
    return dataclasses.replace(
        last,
        input_tokens=sum(answer.invoice.input_tokens for answer in answers),
        output_tokens=sum(answer.invoice.output_tokens for answer in answers),
        cost_usd=None if any(cost is None for cost in costs) else sum((c for c in costs if c is not None), Decimal(0)),
    )


@cache
def _adapter() -> TypeAdapter[ExtractedInvoice]:
    # Built on first use: the handlers' cold start does not pay for it.
    return TypeAdapter(ExtractedInvoice)


def answers_json(answers: Iterable[StageAnswer]) -> str:
    """The stage answers as the ledger keeps them (``extraction_jobs.stage_answers``)."""
    return json.dumps(
        [
            {
                "invoice_index": answer.invoice_index,
                "source": answer.source,
                "stage": answer.stage,
                # What the provider said of its limits was used when the answer came; it is not kept.
                "answer": _adapter().dump_python(dataclasses.replace(answer.invoice, rate_limits=None), mode="json"),
            }
            for answer in answers
        ]
    )


def answers_from_json(value: Any, stages: Sequence[str]) -> list[StageAnswer]:
    """The stage answers read back from the ledger (pg8000 hands jsonb over parsed). An entry that no longer reads
    (an older shape after a deploy, a stage no longer in the cascade) is dropped, never an error: its invoice is read
    again from its first stage."""
    if not isinstance(value, list):
        return []
    answers: list[StageAnswer] = []
    dropped: set[int] = set()
    for entry in value:
        try:
            index, stage = int(entry["invoice_index"]), str(entry["stage"])
            if stage not in stages:
                raise ValueError(f"stage {stage!r} is not in the cascade")
            invoice = _adapter().validate_python(entry["answer"])
            answers.append(StageAnswer(index, str(entry["source"]), stage, invoice))
        except (KeyError, TypeError, ValueError, ValidationError) as error:
            logger.warning(
                "a kept stage answer no longer reads: its invoice is read again", extra={"error": str(error)}
            )
            if isinstance(entry, dict) and isinstance(entry.get("invoice_index"), int):
                dropped.add(entry["invoice_index"])
    # An invoice missing one of its stage answers starts again: its later answers alone would skip a stage.
    return [answer for answer in answers if answer.invoice_index not in dropped]
