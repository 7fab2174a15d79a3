"""The cascade contract (docs/cascade.md), through the consumer handler end to end: the offline reader first and each
remote provider second (OpenAI, Bedrock, Textract), against real Postgres, S3 in moto and each provider's emulator.

Each document is a PDF with a text layer the offline reader reads, and the emulators' stamp on its page (what the
remote stages recognise it by). Its printed lines total decides the first stage's fate: equal to the lines' sum, the
first stage's answer is kept (nothing paid); different, the invoice goes on to the second stage.
"""

from __future__ import annotations

import ctypes
import io
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pypdfium2
import pypdfium2.raw as pdfium_c
import pytest
from PIL import Image

from invoice_pipeline.providers.ocr import OcrExtractor
from local.stamp import draw_stamp
from tests.events.builders import sqs_record
from tests.integration.cli import run_cli
from tests.integration.consumer.conftest import Pipeline
from tests.integration.consumer.test_providers import Provider, arrange, provider

FIRST = "ocr-table-v1"
ROWS = [("Trennblätter A4", "20", "Stk.", "9,90", "198,00"), ("Joghurt Banane", "50", "Stk.", "5,50", "275,00")]
# What the remote stages answer for the stamp (the emulators answer from it).
REMOTE_ANSWER = {
    "currency": "EUR",
    "printed_total": "473.00",
    "items": [
        {
            "description": "Trennblätter A4",
            "quantity": "20",
            "unit": "Stk",
            "unit_price": "9.90",
            "line_total": "198.00",
        },
        {
            "description": "Joghurt Banane",
            "quantity": "50",
            "unit": "Stk",
            "unit_price": "5.50",
            "line_total": "275.00",
        },
    ],
}
# provider -> (throttling fault, configuration fault) as its emulator injects them
FAULTS = {
    "openai": ("rate_limit", "invalid_api_key"),
    "bedrock": ("ThrottlingException", "AccessDeniedException"),
    "textract": ("ThrottlingException", "AccessDeniedException"),
}


def invoice_pdf(stamp: int, *, printed_total: str) -> bytes:
    """One A4 page: the stamp as an image, and the invoice's rows as a text layer (Helvetica, placed in points)."""
    page = Image.new("RGB", (1240, 1754), "white")
    draw_stamp(page, stamp, left=40, top=40, unit=4, height=60)
    buffer = io.BytesIO()
    page.save(buffer, format="PDF", resolution=150)  # 1240 px at 150 dpi: 595 pt, A4
    document = pypdfium2.PdfDocument(buffer.getvalue())
    texts = [(60, 120, "Lieferant GmbH, Rechnung 4711")]
    for number, (description, quantity, unit, price, total) in enumerate(ROWS):
        y = 200 + 20 * number
        texts += [(60, y, description), (300, y, quantity), (340, y, unit), (420, y, price), (500, y, total)]
    texts += [(60, 260, "Rechnungssumme netto"), (500, 260, printed_total)]
    pdf_page = document[0]
    height = pdf_page.get_height()
    font = pdfium_c.FPDFText_LoadStandardFont(document.raw, b"Helvetica")
    for x, y, text in texts:
        text_object = pdfium_c.FPDFPageObj_CreateTextObj(document.raw, font, ctypes.c_float(10.0))
        encoded = (text + "\0").encode("utf-16-le")
        chars = ctypes.create_string_buffer(encoded, len(encoded))
        pdfium_c.FPDFText_SetText(text_object, ctypes.cast(chars, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
        pdfium_c.FPDFPageObj_Transform(text_object, 1, 0, 0, 1, x, height - y - 10)
        pdfium_c.FPDFPage_InsertObject(pdf_page.raw, text_object)
    pdf_page.gen_content()
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


class CountingOcr:
    """Counts the offline stage's reads (the real extractor underneath)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = OcrExtractor.extract

        def extract(extractor: OcrExtractor, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real(extractor, *args, **kwargs)

        monkeypatch.setattr(OcrExtractor, "extract", extract)


@pytest.fixture(params=["openai", "bedrock", "textract"])
def cascade(request, database, sql, aws, monkeypatch) -> Iterator[tuple[Pipeline, Provider, str, CountingOcr]]:
    with provider(request.param) as second:
        llm = f"{FIRST}>{second.llm}"
        pipeline = arrange(Provider(llm, second.emulator, second.env), sql, monkeypatch)
        second.emulator.register(7001, REMOTE_ANSWER)
        yield pipeline, second, request.param, CountingOcr(monkeypatch)


def add_order(pipeline: Pipeline, order_id: int, *, printed_total: str) -> None:
    data = invoice_pdf(7001, printed_total=printed_total)
    pipeline.add_order(order_id, pipeline.put_image(f"orders/{order_id}/invoice.pdf", data))


def stored(pipeline: Pipeline, order_id: int, llm: str) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in pipeline.sql.run(
            "SELECT item_name, qty, unit_price, net_price, stage FROM benchmarking.invoice_items"
            " WHERE order_id = :o AND llm = :l ORDER BY invoice_index, line_no",
            o=order_id,
            l=llm,
        )
    ]


EXPECTED = [
    ("Trennblätter A4", Decimal("20"), Decimal("9.90"), Decimal("198.00")),
    ("Joghurt Banane", Decimal("50"), Decimal("5.50"), Decimal("275.00")),
]


def test_an_invoice_whose_evidence_holds_is_answered_by_the_free_first_stage(cascade):
    pipeline, second, _, ocr = cascade
    llm = pipeline_llm(second)
    add_order(pipeline, 801, printed_total="473,00")

    pipeline.run(sqs_record({"order_id": 801, "llm": llm}))

    job = pipeline.job(801, llm)
    assert job["status"] == "done", job
    assert (job["input_tokens"], job["output_tokens"], job["cost_usd"]) == (0, 0, 0)
    assert [row[:4] for row in stored(pipeline, 801, llm)] == EXPECTED
    assert {row[4] for row in stored(pipeline, 801, llm)} == {FIRST}
    assert ocr.calls == 1 and second.emulator.requests == 0


def test_an_invoice_whose_evidence_fails_is_read_by_the_second_stage_and_costs_what_it_costs(cascade):
    pipeline, second, _, ocr = cascade
    llm = pipeline_llm(second)
    add_order(pipeline, 802, printed_total="480,00")  # the lines add up to 473,00: the first answer is not kept

    pipeline.run(sqs_record({"order_id": 802, "llm": llm}))

    job = pipeline.job(802, llm)
    assert job["status"] == "done", job
    rows = stored(pipeline, 802, llm)
    assert {row[4] for row in rows} == {second.llm}
    assert [row[0] for row in rows] == ["Trennblätter A4", "Joghurt Banane"]
    assert [row[3] for row in rows] == [Decimal("198.00"), Decimal("275.00")]
    assert job["cost_usd"] > 0  # the second stage's price; the first stage adds nothing
    assert ocr.calls == 1 and second.emulator.requests_for(7001) >= 1


def test_a_throttled_second_stage_hands_the_job_back_and_the_first_stage_does_not_read_again(cascade):
    pipeline, second, name, ocr = cascade
    llm = pipeline_llm(second)
    add_order(pipeline, 803, printed_total="480,00")
    second.emulator.inject(FAULTS[name][0])

    pipeline.run(sqs_record({"order_id": 803, "llm": llm}))

    job = pipeline.job(803, llm)
    assert job["status"] == "queued", job  # waiting, not failed
    assert stored(pipeline, 803, llm) == []
    assert ocr.calls == 1

    second.emulator.clear_faults()
    pipeline.run(sqs_record({"order_id": 803, "llm": llm}))

    job = pipeline.job(803, llm)
    assert job["status"] == "done", job
    assert {row[4] for row in stored(pipeline, 803, llm)} == {second.llm}
    assert ocr.calls == 1  # the first stage's answer was kept with the job
    assert kept_answers(pipeline, 803, llm) is None  # and discarded once the job is done


def test_a_configuration_error_at_the_second_stage_waits_and_keeps_the_first_stage_answer(cascade):
    pipeline, second, name, ocr = cascade
    llm = pipeline_llm(second)
    add_order(pipeline, 804, printed_total="480,00")
    second.emulator.inject(FAULTS[name][1])

    pipeline.run(sqs_record({"order_id": 804, "llm": llm}))

    job = pipeline.job(804, llm)
    assert job["status"] == "queued" and job["last_error"], job  # a configuration error never fails the job
    assert stored(pipeline, 804, llm) == []
    assert [entry["stage"] for entry in kept_answers(pipeline, 804, llm)] == [FIRST]

    second.emulator.clear_faults()
    pipeline.run(sqs_record({"order_id": 804, "llm": llm}))

    assert pipeline.job(804, llm)["status"] == "done"
    assert {row[4] for row in stored(pipeline, 804, llm)} == {second.llm}
    assert ocr.calls == 1


def test_the_rows_of_a_single_model_have_no_stage(cascade, monkeypatch):
    pipeline, second, _, _ = cascade
    add_order(pipeline, 805, printed_total="473,00")
    monkeypatch.setenv("LLM_MODELS", second.llm)
    pipeline.new_container()

    pipeline.run(sqs_record({"order_id": 805, "llm": second.llm}))

    assert pipeline.job(805, second.llm)["status"] == "done"
    assert {row[4] for row in stored(pipeline, 805, second.llm)} == {None}


def pipeline_llm(second: Provider) -> str:
    return f"{FIRST}>{second.llm}"


def kept_answers(pipeline: Pipeline, order_id: int, llm: str) -> Any:
    rows = pipeline.sql.run(
        "SELECT stage_answers FROM benchmarking.extraction_jobs WHERE order_id = :o AND llm = :l", o=order_id, l=llm
    )
    return rows[0][0]


@pytest.mark.parametrize("cascade", ["openai"], indirect=True)
def test_where_the_ocr_runtime_is_not_deployed_a_scan_goes_to_the_next_stage_and_a_text_layer_is_still_read(
    cascade, monkeypatch
):
    pipeline, second, _, ocr = cascade
    llm = pipeline_llm(second)
    for module in ("rapidocr", "onnxruntime", "cv2"):  # as in the Lambda layer: `import rapidocr` fails
        monkeypatch.setitem(sys.modules, module, None)
    pipeline.new_container()
    add_order(pipeline, 806, printed_total="473,00")
    pipeline.add_invoice_order(807, [(7001, REMOTE_ANSWER)])  # a PNG scan: only OCR could read it

    pipeline.run(sqs_record({"order_id": 806, "llm": llm}), sqs_record({"order_id": 807, "llm": llm}))

    assert {row[4] for row in stored(pipeline, 806, llm)} == {FIRST}  # the text layer needs no OCR runtime
    assert pipeline.job(807, llm)["status"] == "done"
    assert {row[4] for row in stored(pipeline, 807, llm)} == {second.llm}
    assert ocr.calls == 2 and second.emulator.requests_for(7001) == 1


@pytest.mark.parametrize("cascade", ["openai"], indirect=True)
def test_the_report_shows_the_share_each_stage_answered_and_the_cost_saved(cascade, capsys, tmp_path):
    pipeline, second, _, _ = cascade
    llm = pipeline_llm(second)
    add_order(pipeline, 811, printed_total="473,00")  # answered free
    add_order(pipeline, 812, printed_total="473,00")  # answered free
    add_order(pipeline, 813, printed_total="480,00")  # passed on
    pipeline.run(*(sqs_record({"order_id": order_id, "llm": llm}) for order_id in (811, 812, 813)))
    paid = pipeline.job(813, llm)["cost_usd"]
    capsys.readouterr()

    code, out = run_cli(capsys, "report", "--format", "json")

    row = next(row for row in json.loads(out) if row["llm"] == llm)
    assert code == 0
    assert row["stages"] == {
        FIRST: {"invoices": 2, "share": round(2 / 3, 4)},
        second.llm: {"invoices": 1, "share": round(1 / 3, 4)},
    }
    assert Decimal(row["cost_saved_usd"]) == (paid * 2).quantize(Decimal("0.000001"))
    code, text = run_cli(capsys, "report")
    assert f"answered per stage (invoices): {FIRST} 2 (67%), {second.llm} 1 (33%)" in text
    code, _ = run_cli(capsys, "report", "--html", str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    assert code == 0 and "Cascades: who answered" in page and f"{FIRST} 2 (" in page


@pytest.mark.parametrize("cascade", ["openai"], indirect=True)
def test_capacity_counts_only_the_calls_each_stage_is_expected_to_make(cascade, capsys):
    pipeline, second, _, _ = cascade
    llm = pipeline_llm(second)
    for order_id, total in ((821, "473,00"), (822, "473,00"), (823, "473,00"), (824, "480,00")):
        add_order(pipeline, order_id, printed_total=total)
    pipeline.run(*(sqs_record({"order_id": order_id, "llm": llm}) for order_id in (821, 822, 823, 824)))
    assert run_cli(capsys, "budget", second.llm, "--tpm", "1000000", "--rpm", "6")[0] == 0

    code, out = run_cli(capsys, "capacity", "--json")

    plan = next(plan for plan in json.loads(out) if plan["llm"] == llm)
    assert code == 0
    assert plan["stage_calls_per_invoice"] == {FIRST: 1.0, second.llm: 0.25}  # one invoice in four goes on
    assert plan["budget_stage"] == second.llm
    # 6 requests per minute (less the budget's margin), one call per four orders: four times what calling every time
    # would allow; the tokens are far inside the budget.
    margin = plan["budget"]["margin"]
    assert plan["orders_per_hour"] == pytest.approx(6 * (1 - margin) / 0.25 * 60, rel=0.01)
    code, text = run_cli(capsys, "capacity")
    assert f"expected calls per invoice: {FIRST} 1.00, {second.llm} 0.25; paced by the budget of {second.llm}" in text
