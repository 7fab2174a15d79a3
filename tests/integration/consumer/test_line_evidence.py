"""Each provider stores what it knows of where each line was read, and every line its checks and trust, through
the consumer handler end to end (the providers' emulators and the offline reader, as in ``test_providers``)."""

from __future__ import annotations

import copy
import json

import pytest

from invoice_pipeline.tables.evidence import TRUST_LEVELS
from tests.events.builders import sqs_record
from tests.integration.consumer.test_providers import OCR_MODEL, SAMPLE, TEXTRACT_MODEL, run  # noqa: F401

EVIDENCE = (
    "SELECT line_no, page, bbox, source_text, checks, trust FROM benchmarking.invoice_items"
    " WHERE order_id = :o AND llm = :l ORDER BY invoice_index, line_no"
)


def answer_with_rows() -> dict:
    """The sample's answer as a model asked for page and row would give it, with two bad values a model may send:
    a page past the document and a row with control characters."""
    answer = copy.deepcopy(SAMPLE.answer)
    for line in answer["items"]:
        printed = (line["description"], line["quantity"], line["unit"], line["unit_price"], line["line_total"])
        line["page"] = 1
        line["source_text"] = "  ".join(printed)
    answer["items"][1]["page"] = 3
    answer["items"][2]["source_text"] = "Canned\x00 chickpeas 10 case 5.645 56.450"
    return answer


@pytest.mark.parametrize("run", ["openai", "bedrock", "textract", "ocr"], indirect=True)
def test_each_provider_stores_where_it_read_each_line_and_every_line_its_trust(run):  # noqa: F811 (the fixture)
    pipeline, chosen = run
    if pipeline.model is not None:
        pipeline.model.register(SAMPLE.stamp, answer_with_rows())
    pipeline.add_order(601, pipeline.put_image(f"orders/601/{SAMPLE.filename}", SAMPLE.data))

    assert pipeline.run(sqs_record({"order_id": 601, "llm": chosen.llm})) == []

    assert pipeline.job(601, chosen.llm)["status"] == "done"
    rows = pipeline.sql.run(EVIDENCE, o=601, l=chosen.llm)
    assert len(rows) >= 8
    for _, page, bbox, source_text, checks, trust in rows:
        assert trust in TRUST_LEVELS
        assert set(checks) == {"passed", "failed"} and "numbers_present" in checks["passed"] + checks["failed"]
        if bbox is not None:
            assert len(bbox) == 4 and all(0 <= value <= 1 for value in bbox) and bbox[0] < bbox[2]
        assert source_text is None or ("\x00" not in source_text and len(source_text) <= 1000)
        assert page in (None, 1)
    by_line = {line_no: (page, bbox, source_text) for line_no, page, bbox, source_text, _, _ in rows}
    warnings = pipeline.sql.run(
        "SELECT warnings, evidence FROM benchmarking.extraction_jobs WHERE order_id = 601 AND llm = :l", l=chosen.llm
    )[0]
    codes = [(warning["code"], warning["line_no"]) for warning in warnings[0]]
    evidence = warnings[1]
    assert [invoice["invoice_index"] for invoice in evidence] == [0]
    assert evidence[0]["line_count"] == len(rows)
    if chosen.llm == OCR_MODEL:
        # the reader's own rows: every line found on the page, with its box
        located = [line for line in by_line.values() if line[1] is not None]
        assert len(located) >= len(rows) - 1
        assert all(page == 1 and text for page, _, text in located)
        assert evidence[0]["item_rows"] is not None
        return
    if chosen.llm == TEXTRACT_MODEL:
        # the row's geometry and text from the response
        assert all(page == 1 and bbox is not None and text for page, bbox, text in by_line.values())
        assert by_line[1][2].startswith("Chicken breast boneless 2 kg 1.644 3.288")
        return
    # a vision model: the page and row it was asked for; no geometry; bad values normalised with a warning
    assert [bbox for _, bbox, _ in by_line.values()] == [None] * len(rows)
    assert by_line[1] == (1, None, "Chicken breast boneless 2 kg 1.644 3.288")
    assert by_line[2][0] is None and ("bad_page", 2) in codes
    assert by_line[3][2] == "Canned chickpeas 10 case 5.645 56.450" and ("control_characters", 3) in codes
    assert {trust for *_, trust in rows} == {"verified"}  # every number printed and the sample adds up
    assert json.loads(json.dumps(evidence[0]["passed"])) == ["invoice_total"]
