"""Hostile and heavy invoice inputs, small on disk, and a peak-memory probe that prepares one in a child process.

The corpus is what a consumer must survive with a 1024 MB function: a 4 KB PNG of 1 x 2,000,000 pixels, a
2,000,000 x 1 strip, a 40 MP photo and a 40 MP scan, a decompression bomb (100 MP of zeros in a few hundred
KB), a 10-page PDF and an ordinary tall receipt. :func:`peak_rss_of_preparation` runs the consumer's
preparation (``prepare_invoice`` of a given module) on one file in a fresh process and reports that
process's peak resident set size, so one input's memory never hides behind another's.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ROOT / "functions"

TALL_SIZE = (1, 2_000_000)
WIDE_SIZE = (2_000_000, 1)
PHOTO_SIZE = (7296, 5472)  # a 40 MP phone camera's frame (39.9 million pixels, under MAX_PIXELS)
BOMB_SIZE = (10_000, 10_000)
PDF_PAGES = 10
RECEIPT_SIZE = (1000, 15_000)  # a long receipt that is legitimately split into segments


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def decompression_bomb_png(width: int, height: int) -> bytes:
    """A valid 8-bit grayscale PNG of ``width`` x ``height`` zeros, compressed row by row (never held whole)."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _page(width: int, height: int, label: str) -> Image.Image:
    page = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(page)
    for top in range(40, height - 40, max(60, height // 40)):
        draw.text((40, top), f"{label}  line at {top} px  1 x 2.500 = 2.500", fill="black")
    return page


def write_corpus(directory: Path) -> dict[str, Path]:
    """Write every input of the corpus into ``directory``; name -> path (a few MB in all)."""
    directory.mkdir(parents=True, exist_ok=True)
    contents = {
        "tall_1x2000000.png": _encoded(Image.new("L", TALL_SIZE, 255), "PNG", optimize=True),
        "wide_2000000x1.png": _encoded(Image.new("L", WIDE_SIZE, 255), "PNG", optimize=True),
        "photo_40mp.jpg": _encoded(_page(*PHOTO_SIZE, "photo"), "JPEG", quality=80),
        "scan_40mp.png": _encoded(_page(*PHOTO_SIZE, "scan"), "PNG"),
        "bomb_100mp.png": decompression_bomb_png(*BOMB_SIZE),
        "receipt_1000x15000.png": _encoded(_page(*RECEIPT_SIZE, "receipt"), "PNG"),
    }
    pages = [_page(1240, 1754, f"page {number}") for number in range(1, PDF_PAGES + 1)]
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=150)
    contents[f"pdf_{PDF_PAGES}_pages.pdf"] = buffer.getvalue()
    paths = {}
    for name, data in contents.items():
        path = directory / name
        path.write_bytes(data)
        paths[name] = path
    return paths


# Runs in the child. Linux carries the parent's peak RSS over an exec into the child's ru_maxrss (a test run's
# parent is large), so the child forks once more after its imports and takes the ru_maxrss of that fresh
# process from wait4: its peak starts at the child's own size, interpreter and Pillow included.
_CHILD = """
import importlib, json, os, sys
from pathlib import Path
module_name, path = sys.argv[1], Path(sys.argv[2])
images = importlib.import_module(module_name)
from invoice_pipeline.errors import ImageRejected
idle = os.fork()
if idle == 0:
    os._exit(0)
baseline = os.wait4(idle, 0)[2].ru_maxrss
reader, writer = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(reader)
    try:
        segments = images.prepare_invoice(path.read_bytes(), source=f"s3://corpus/{path.name}")
        outcome = f"accepted, {len(segments)} segment(s)"
    except ImageRejected as error:
        outcome = f"refused: {error}"
    os.write(writer, outcome.encode())
    os._exit(0)
os.close(writer)
with os.fdopen(reader, "rb") as pipe:
    outcome = pipe.read().decode()
_, status, usage = os.wait4(pid, 0)
if status != 0:
    sys.exit(f"the preparation ended with status {status}")
print(json.dumps({"outcome": outcome, "peak_kb": usage.ru_maxrss, "baseline_kb": baseline}))
"""


@dataclass(frozen=True)
class Measurement:
    outcome: str  # "accepted, n segment(s)" or "refused: <the ImageRejected message>"
    peak_rss_mb: float  # ru_maxrss of the process that prepared it: interpreter, imports and the preparation
    baseline_rss_mb: float  # the interpreter with the module imported, before reading the file

    @property
    def refused(self) -> bool:
        return self.outcome.startswith("refused")


def peak_rss_of_preparation(
    path: Path,
    *,
    module: str = "invoice_pipeline.documents.images",
    extra_path: Path | None = None,
    timeout: float = 600,
) -> Measurement:
    """Prepare ``path`` with ``module.prepare_invoice`` in a fresh interpreter and measure its peak RSS."""
    search_path = [str(FUNCTIONS)] + ([str(extra_path)] if extra_path else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*search_path, os.environ.get("PYTHONPATH", "")])}
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, module, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"preparing {path.name} crashed ({completed.returncode}): {completed.stderr[-2000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return Measurement(result["outcome"], result["peak_kb"] / 1024, result["baseline_kb"] / 1024)
