"""Accuracy and speed of the offline extractor (ocr-table-v1) on generated sample invoices, per kind.

Each sample is prepared the way the consumer prepares images for a model (EXIF orientation applied, fit into
2048 x 2048, short side at most 768, tall receipts cut into overlapping segments, JPEG), read by the OCR
extractor and scored against its ground truth with ``invoices_cli.accuracy``. Prints per kind: item
precision / recall / F1, the exact rate of the numeric fields of matched items, pages (segments) per second on
this machine (wall clock: other load on the machine lowers it), CPU seconds per page (both cores together) and
the process's peak memory so far.

    python bench/ocr_accuracy.py [--per-kind N] [--seed S]
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from PIL import Image, ImageOps  # noqa: E402

from invoice_pipeline.extractor import InvoiceImages, PreparedImage  # noqa: E402
from invoice_pipeline.providers.ocr import OcrExtractor  # noqa: E402
from invoice_pipeline.reading.validation import validate  # noqa: E402
from invoices_cli.accuracy import ItemScores, aggregate, compare  # noqa: E402
from local.samples import KINDS, generate_invoice  # noqa: E402

FIT = 2048
SHORT_SIDE = 768
# A page taller than this many widths is cut into segments this many widths tall, overlapping by OVERLAP.
TALL_RATIO = 2.5
SEGMENT_RATIO = 1.5
OVERLAP_RATIO = 0.25


def _encode(image: Image.Image) -> PreparedImage:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=90)
    return PreparedImage(buffer.getvalue(), "image/jpeg", image.width, image.height)


def _scaled(image: Image.Image) -> Image.Image:
    scale = min(1.0, FIT / max(image.size))
    if min(image.size) * scale > SHORT_SIDE:
        scale = SHORT_SIDE / min(image.size)
    if scale >= 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def prepare(data: bytes) -> tuple[PreparedImage, ...]:
    """A minimal stand-in for the consumer's image preparation (same rules, fewer checks)."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if image.height <= TALL_RATIO * image.width:
        return (_encode(_scaled(image)),)
    segment = round(SEGMENT_RATIO * image.width)
    step = segment - round(OVERLAP_RATIO * image.width)
    segments, top = [], 0
    while True:
        bottom = min(image.height, top + segment)
        segments.append(_encode(_scaled(image.crop((0, top, image.width, bottom)))))
        if bottom >= image.height:
            return tuple(segments)
        top += step


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=3)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args()

    extractor = OcrExtractor()
    started = time.perf_counter()
    extractor.extract(InvoiceImages(0, 0, prepare(generate_invoice("a4_classic", stamp=1).data)), deadline=1e12)
    print(f"model load and first page: {time.perf_counter() - started:.1f} s, peak memory {peak_memory_mb():.0f} MB")
    header = f"{'kind':<15}{'n':>3}{'items':>6}{'P':>7}{'R':>7}{'F1':>7}{'numeric':>9}{'desc':>7}{'warn':>6}"
    print(header + f"{'pages/s':>9}{'cpu s/pg':>9}{'peak MB':>9}")
    totals: list[ItemScores] = []
    stamp = 1000
    for kind in args.kinds.split(","):
        scores, pages, seconds, cpu, warned = [], 0, 0.0, 0.0, 0
        for _ in range(args.per_kind):
            stamp += 1
            sample = generate_invoice(kind, stamp=stamp, seed=args.seed)
            segments = prepare(sample.data)
            began, began_cpu = time.perf_counter(), time.process_time()
            result = extractor.extract(InvoiceImages(stamp, 0, segments), deadline=time.monotonic() + 600)
            seconds += time.perf_counter() - began
            cpu += time.process_time() - began_cpu
            pages += len(segments)
            scores.append(compare(sample.truth.items, result.items))
            warned += bool(validate(result))
        total = aggregate(scores)
        totals.append(total)
        print(
            f"{kind:<15}{args.per_kind:>3}{total.tp + total.fn:>6}{total.precision:>7.3f}{total.recall:>7.3f}"
            f"{total.f1:>7.3f}{total.numeric_accuracy:>9.3f}{total.field_accuracy['description']:>7.3f}"
            f"{warned:>6}{pages / seconds:>9.2f}{cpu / pages:>9.2f}{peak_memory_mb():>9.0f}"
        )
    overall = aggregate(totals)
    print(
        f"{'all':<15}{'':>3}{overall.tp + overall.fn:>6}{overall.precision:>7.3f}{overall.recall:>7.3f}"
        f"{overall.f1:>7.3f}{overall.numeric_accuracy:>9.3f}{overall.field_accuracy['description']:>7.3f}"
    )
    print(
        "P/R/F1: items; numeric: quantity, unit price, line total exact on matched items; desc: description exact;"
        " warn: invoices with arithmetic warnings"
    )
    return 0


if __name__ == "__main__":
    from local.logs import bench_logs

    with bench_logs("bench-ocr-accuracy"):
        status = main()
    raise SystemExit(status)
