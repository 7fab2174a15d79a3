"""The cascade ``ocr-table-v1>gpt-4o`` against ``gpt-4o`` alone, on the shared real documents (``../shared/realdocs``
and ``../shared/realdocs2``), PDF and scan passes, side by side in one run.

Per invoice: the offline reader (the real ``OcrExtractor``, text layer where usable, OCR otherwise) reads it; its
answer is kept when :func:`invoice_pipeline.flows.cascade.accepts` holds (the consumer's rule), else ``gpt-4o`` reads
it. ``gpt-4o`` is the real OpenAI extractor against the model emulator, which answers each document from its labels (the
set's JSON): a stamp is drawn on the prepared page for the emulator to recognise, so tokens and cost are those of
the real page images at gpt-4o's price. The ``gpt-4o`` alone row is that same answer for every invoice.

Printed per set and pass, then per pass over both sets: the share of invoices answered by each stage, cost per
invoice (cascade and gpt-4o alone, and their ratio) and lines fully right (the set's own ``score.py``: description
matched, quantity, unit price and line total within 0.01). Goals: on the PDF pass >= 80 % of the text-layer PDFs
answered by the free stage, no fewer lines fully right than gpt-4o alone, cost per invoice >= 5x lower.

    .venv/bin/python bench/cascade.py [--set DIR ...] [--passes pdf,scan] [--ocr-cache DIR]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from PIL import Image  # noqa: E402

from bench.real_documents import (  # noqa: E402
    DEFAULT_SETS,
    CachedReader,
    Tally,
    documents,
    invoice_images,
    load_scorer,
    score_invoice,
    text_layers,
)
from invoice_pipeline import settings  # noqa: E402
from invoice_pipeline.clients import AwsClients  # noqa: E402
from invoice_pipeline.extractor import ExtractedInvoice, InvoiceImages, PreparedImage  # noqa: E402
from invoice_pipeline.flows import cascade  # noqa: E402
from invoice_pipeline.providers.normalise import normalise_provenance  # noqa: E402
from invoice_pipeline.providers.ocr import OcrExtractor, RapidOcrReader  # noqa: E402
from invoice_pipeline.providers.registry import Extractors  # noqa: E402
from local.aws import patched_environment  # noqa: E402
from local.model_emulator import ModelEmulator  # noqa: E402
from local.stamp import draw_stamp  # noqa: E402

FIRST, SECOND = "ocr-table-v1", "gpt-4o"
CASCADE = f"{FIRST}>{SECOND}"
GOALS = {"free share of text-layer PDFs": 0.80, "cost ratio": 5.0}


@dataclass
class Row:
    invoices: int = 0
    text_layer: int = 0
    text_layer_free: int = 0
    by_stage: dict[str, int] = field(default_factory=lambda: {FIRST: 0, SECOND: 0})
    cascade_cost: Decimal = Decimal(0)
    alone_cost: Decimal = Decimal(0)
    cascade: Tally = field(default_factory=Tally)
    alone: Tally = field(default_factory=Tally)

    def add(self, other: Row) -> None:
        self.invoices += other.invoices
        self.text_layer += other.text_layer
        self.text_layer_free += other.text_layer_free
        for stage, count in other.by_stage.items():
            self.by_stage[stage] += count
        self.cascade_cost += other.cascade_cost
        self.alone_cost += other.alone_cost
        self.cascade.add(other.cascade)
        self.alone.add(other.alone)


def stamped(segments: tuple[PreparedImage, ...], stamp: int) -> tuple[PreparedImage, ...]:
    """The segments with the emulator's stamp drawn on a white patch at the top left of the first one."""
    first = Image.open(io.BytesIO(segments[0].data)).convert("RGB")
    patch = Image.new("RGB", (min(first.width, 640), 90), "white")
    first.paste(patch, (0, 0))
    draw_stamp(first, stamp, left=10, top=10, unit=4, height=60)
    buffer = io.BytesIO()
    first.save(buffer, format="PNG")
    image = PreparedImage(buffer.getvalue(), "image/png", first.width, first.height)
    return (image, *segments[1:])


def label_answer(truth: dict[str, Any]) -> dict[str, Any]:
    """What the emulator answers for a document: its labels, as the model's JSON."""
    return {
        "currency": truth.get("currency"),
        "printed_total": truth.get("printed_total"),
        "items": [
            {
                "description": item.get("description"),
                "quantity": item.get("quantity"),
                "unit": item.get("unit"),
                "unit_price": item.get("unit_price"),
                "line_total": item.get("line_total"),
            }
            for item in truth["items"]
        ],
    }


def run_pass(
    root: Path, name: str, ocr: OcrExtractor, remote: Any, emulator: ModelEmulator, stamp: list[int]
) -> Row | None:
    found = documents(root, name)
    if not found:
        return None
    score = load_scorer(root)
    row = Row()
    print(f"\n{root.name} {name}: {len(found)} invoices")
    for basename, path, truth in found:
        data = path.read_bytes()
        invoice = invoice_images(data, str(path))
        first = ocr.extract(invoice, deadline=time.monotonic() + 600)
        first = normalise_provenance(first, pages=len(invoice.segments))
        stamp[0] += 1
        emulator.register(stamp[0], label_answer(truth))
        segments = stamped(remote.prepare(data, source=str(path)), stamp[0])
        alone = remote.extract(InvoiceImages(0, 0, segments), deadline=time.monotonic() + 120)
        answers = [cascade.StageAnswer(0, str(path), FIRST, first)]
        if cascade.next_stage((FIRST, SECOND), answers) == 1:
            answers.append(cascade.StageAnswer(0, str(path), SECOND, alone))
        final: ExtractedInvoice = cascade.final_answer(answers)
        stage = answers[-1].stage
        row.invoices += 1
        row.by_stage[stage] += 1
        if name == "pdf" and all(text_layers(data)):
            row.text_layer += 1
            row.text_layer_free += stage == FIRST
        row.cascade_cost += final.cost_usd
        row.alone_cost += alone.cost_usd
        cascade_line = score_invoice(score, truth, final, row.cascade)
        score_invoice(score, truth, alone, row.alone)
        print(f"  {basename:<44} {stage:<13} ${final.cost_usd:<9.5f} {cascade_line}")
    return row


def print_row(label: str, row: Row) -> None:
    shares = ", ".join(f"{stage} {count / max(row.invoices, 1):.0%}" for stage, count in row.by_stage.items())
    per_cascade = row.cascade_cost / max(row.invoices, 1)
    per_alone = row.alone_cost / max(row.invoices, 1)
    ratio = f"{per_alone / per_cascade:.1f}x" if per_cascade else "inf (nothing paid)"
    print(f"{label}: {row.invoices} invoices; answered by {shares}")
    if row.text_layer:
        print(f"  text-layer PDFs answered by {FIRST}: {row.text_layer_free}/{row.text_layer}")
    print(f"  cost per invoice: cascade ${per_cascade:.5f}, {SECOND} alone ${per_alone:.5f} ({ratio} lower)")
    print(
        f"  lines fully right: cascade {row.cascade.fully_correct}/{row.cascade.expected}, "
        f"{SECOND} alone {row.alone.fully_correct}/{row.alone.expected}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", type=Path, help="a set folder (default: both shared sets)")
    parser.add_argument("--passes", default="pdf,scan")
    parser.add_argument("--ocr-cache", type=Path, help="keep OCR boxes on disk between runs (by image hash)")
    args = parser.parse_args(argv)
    roots = args.set or list(DEFAULT_SETS)
    missing = [root for root in roots if not (root / "score.py").is_file()]
    if missing:
        raise SystemExit(
            f"the real-document sets are missing: {', '.join(str(root) for root in missing)} (expected "
            "../shared/realdocs and ../shared/realdocs2 beside the repository, each with its score.py; or pass --set)"
        )
    reader: Any = RapidOcrReader()
    if args.ocr_cache:
        reader = CachedReader(reader, args.ocr_cache)
    ocr = OcrExtractor(FIRST, reader=reader)
    totals: dict[str, Row] = {}
    with ExitStack() as stack:
        emulator = stack.enter_context(ModelEmulator())
        env = {
            "OPENAI_BASE_URL": emulator.base_url,
            "OPENAI_API_KEY": "emulator",
            "DATABASE_URL": "postgresql://unused@127.0.0.1/unused",
            "ALLOWED_BUCKETS": "unused",
            "LLM_MODELS": f"{CASCADE},{SECOND}",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
        }
        stack.enter_context(patched_environment(env))
        remote = Extractors(settings.consumer_settings(), AwsClients()).get(SECOND)
        stamp = [70000]
        for name in args.passes.split(","):
            for root in roots:
                row = run_pass(root, name, ocr, remote, emulator, stamp)
                if row is not None:
                    totals.setdefault(name, Row()).add(row)
                    print_row(f"{root.name} {name}", row)
    print("\nTOTALS, both sets")
    for name, row in totals.items():
        print_row(name, row)
    pdf = totals.get("pdf")
    if pdf is not None:
        free = pdf.text_layer_free / max(pdf.text_layer, 1)
        per_cascade = pdf.cascade_cost / max(pdf.invoices, 1)
        ratio = (pdf.alone_cost / pdf.invoices) / per_cascade if per_cascade else Decimal("Infinity")
        print("\nGOALS (PDF pass)")
        print(f"  text-layer PDFs answered free: {free:.0%} (goal >= {GOALS['free share of text-layer PDFs']:.0%})")
        print(f"  lines fully right: {pdf.cascade.fully_correct} vs {pdf.alone.fully_correct} alone (goal: no loss)")
        print(f"  cost per invoice {ratio:.1f}x lower than {SECOND} alone (goal >= {GOALS['cost ratio']:.0f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
