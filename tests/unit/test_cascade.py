"""What accepts a cascade stage's answer, where an invoice goes next, what it ends with, and the kept answers."""

from __future__ import annotations

import json
from decimal import Decimal

from invoice_pipeline.extractor import ExtractedInvoice, ExtractedItem
from invoice_pipeline.flows import cascade
from invoice_pipeline.flows.cascade import StageAnswer

STAGES = ("ocr-table-v1", "gpt-4.1-mini", "gpt-4o")


def line(quantity: str, price: str, total: str) -> ExtractedItem:
    return ExtractedItem("Joghurt", Decimal(quantity), "Stk", Decimal(price), Decimal(total))


def invoice(
    *items: ExtractedItem, printed: str | None = "473.00", cost: str = "0", tokens: int = 0
) -> ExtractedInvoice:
    return ExtractedInvoice(
        0,
        "EUR",
        None if printed is None else Decimal(printed),
        items,
        input_tokens=tokens,
        output_tokens=tokens // 10,
        cost_usd=Decimal(cost),
    )


GOOD = invoice(line("20", "9.90", "198.00"), line("50", "5.50", "275.00"))


def test_an_answer_whose_lines_add_up_to_the_printed_total_is_accepted():
    assert cascade.accepts(GOOD)


def test_an_answer_is_refused_when_the_lines_miss_the_printed_total():
    assert not cascade.accepts(invoice(line("20", "9.90", "198.00"), line("50", "5.50", "275.00"), printed="480.00"))


def test_an_answer_is_refused_when_a_line_does_not_multiply_out():
    assert not cascade.accepts(invoice(line("20", "9.90", "200.00"), line("50", "5.50", "273.00")))


def test_an_answer_without_a_printed_total_or_without_lines_is_refused():
    assert not cascade.accepts(invoice(line("20", "9.90", "198.00"), printed=None))
    assert not cascade.accepts(invoice(printed="0"))


def test_a_lump_sum_line_is_refused_even_when_the_invoice_total_confirms_it():
    lump_sum = ExtractedItem("Privathaftpflicht", None, None, None, Decimal("473.00"))
    assert not cascade.accepts(invoice(lump_sum))


def test_an_invoice_goes_on_until_an_answer_is_accepted_or_the_last_stage_answered():
    bad = invoice(line("20", "9.90", "200.00"))
    assert cascade.next_stage(STAGES, []) == 0
    assert cascade.next_stage(STAGES, [StageAnswer(0, "s3://b/k", STAGES[0], GOOD)]) is None
    assert cascade.next_stage(STAGES, [StageAnswer(0, "s3://b/k", STAGES[0], bad)]) == 1
    answers = [StageAnswer(0, "s3://b/k", stage, bad) for stage in STAGES]
    assert cascade.next_stage(STAGES, answers) is None  # the last stage's answer is kept as it is


def test_the_final_answer_is_the_last_one_with_the_tokens_and_cost_of_every_stage():
    first = invoice(line("20", "9.90", "200.00"))
    second = invoice(line("20", "9.90", "198.00"), cost="0.004", tokens=1500)
    third = invoice(line("20", "9.90", "198.00"), printed="198.00", cost="0.010", tokens=1200)
    final = cascade.final_answer(
        [StageAnswer(0, "x", stage, answer) for stage, answer in zip(STAGES, (first, second, third), strict=True)]
    )
    assert final.items == third.items and final.printed_total == Decimal("198.00")
    assert (final.input_tokens, final.output_tokens, final.cost_usd) == (2700, 270, Decimal("0.014"))


def test_kept_answers_read_back_as_written_and_unreadable_invoices_start_again():
    answers = [StageAnswer(0, "s3://b/a", STAGES[0], GOOD), StageAnswer(1, "s3://b/b", STAGES[0], GOOD)]
    stored = json.loads(cascade.answers_json(answers))
    assert cascade.answers_from_json(stored, STAGES) == answers
    stored[1]["answer"] = {"items": "garbled"}
    assert cascade.answers_from_json(stored, STAGES) == answers[:1]
    assert cascade.answers_from_json(stored, ("gpt-4o", "bedrock/x")) == []  # stages no longer in the cascade
    assert cascade.answers_from_json(None, STAGES) == []


def test_each_stage_is_expected_to_read_what_the_stages_before_it_passed_on():
    from invoice_pipeline.model_names import parse_model_entry
    from invoices_cli.cascades import stage_reach

    entry = parse_model_entry(">".join(STAGES))
    assert stage_reach(entry, {}) == dict.fromkeys(STAGES, 1.0)  # before any data: every call
    assert stage_reach(entry, {STAGES[0]: 6, STAGES[1]: 3, STAGES[2]: 1}) == {
        STAGES[0]: 1.0,
        STAGES[1]: 0.4,
        STAGES[2]: 0.1,
    }
