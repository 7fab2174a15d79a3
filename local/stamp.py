"""A machine-readable stamp drawn on every sample invoice, so the model emulator knows which one it sees.

The stamp is a small one-dimensional barcode: a thick start bar, 32 data bars (24-bit sample id and an 8-bit
check, narrow bar = 0, wide bar = 1, each followed by a narrow space) and a thick end bar. Widths are read
relative to each other, so the stamp survives the consumer's scaling, re-encoding, segmenting (it sits at the
top, in the first segment) and mild blur, noise or perspective of the "photographed" samples.
"""

from __future__ import annotations

from PIL import Image, ImageDraw

DATA_BITS = 24
CHECK_BITS = 8
START_UNITS = 5
NARROW, WIDE = 1, 3


def _check(value: int) -> int:
    return (((value >> 16) & 0xFF) + ((value >> 8) & 0xFF) + (value & 0xFF)) % 256 ^ 0xA5


def _bits(value: int) -> list[int]:
    word = (value << CHECK_BITS) | _check(value)
    return [(word >> shift) & 1 for shift in range(DATA_BITS + CHECK_BITS - 1, -1, -1)]


def stamp_width_units(value: int) -> int:
    return 2 * START_UNITS + 1 + sum((WIDE if bit else NARROW) + 1 for bit in _bits(value))


def draw_stamp(image: Image.Image, value: int, *, left: int, top: int, unit: int, height: int) -> None:
    """Draw the stamp for ``value`` (0 <= value < 2**24) with its top-left corner at (left, top)."""
    if not 0 <= value < 1 << DATA_BITS:
        raise ValueError(f"stamp value must fit in {DATA_BITS} bits, got {value}")
    draw = ImageDraw.Draw(image)
    black = 0 if image.mode in ("L", "1") else (0, 0, 0)
    x = left

    def bar(units: int) -> None:
        nonlocal x
        draw.rectangle([x, top, x + units * unit - 1, top + height - 1], fill=black)
        x += units * unit

    bar(START_UNITS)
    x += unit
    for bit in _bits(value):
        bar(WIDE if bit else NARROW)
        x += unit
    bar(START_UNITS)


def _runs(row: list[int]) -> list[tuple[bool, int]]:
    runs: list[tuple[bool, int]] = []
    for pixel_dark in (value < 128 for value in row):
        if runs and runs[-1][0] == pixel_dark:
            runs[-1] = (pixel_dark, runs[-1][1] + 1)
        else:
            runs.append((pixel_dark, 1))
    return runs


def _decode_runs(runs: list[tuple[bool, int]]) -> int | None:
    needed = 2 + 2 * (DATA_BITS + CHECK_BITS) + 1  # start bar, space, (bar, space) * 32, end bar
    for start in range(len(runs) - needed + 1):
        dark, start_width = runs[start]
        if not dark:
            continue
        window = runs[start : start + needed]
        spaces = [width for is_dark, width in window[1::2]]
        if any(is_dark for is_dark, _ in window[1::2]) or not spaces:
            continue
        unit = sorted(spaces)[len(spaces) // 2]
        if unit <= 0 or start_width < 3.5 * unit or window[-1][1] < 3.5 * unit:
            continue
        bars = [width for _, width in window[2:-1:2]]
        if len(bars) != DATA_BITS + CHECK_BITS or any(width > 4.2 * unit for width in bars):
            continue
        if any(width > 2.2 * unit for width in spaces):
            continue
        bits = [1 if width >= 2 * unit else 0 for width in bars]
        word = 0
        for bit in bits:
            word = (word << 1) | bit
        value, check = word >> CHECK_BITS, word & 0xFF
        if _check(value) == check:
            return value
    return None


def read_stamp(image: Image.Image, *, search_fraction: float = 0.25) -> int | None:
    """Find and decode a stamp in the top part of ``image``; None when there is none."""
    gray = image.convert("L")
    width, height = gray.size
    rows = max(1, int(height * search_fraction))
    # Raw rows as bytes: per-pixel access is ~10x slower, and the model emulator reads a stamp per request.
    data = gray.crop((0, 0, width, min(height, rows + 2))).tobytes()
    last = min(height, rows + 2) - 1
    step = max(1, rows // 200)
    for y in range(0, rows, step):
        # Average three rows: noise of the photographed samples would otherwise break thin spaces.
        r0, r1, r2 = (data[yy * width : (yy + 1) * width] for yy in (y, min(y + 1, last), min(y + 2, last)))
        row = [(a + b + c) // 3 for a, b, c in zip(r0, r1, r2, strict=True)]
        low, high = min(row), max(row)
        if high - low < 60:
            continue
        middle = (low + high) // 2
        value = _decode_runs(_runs([0 if p < middle else 255 for p in row]))
        if value is not None:
            return value
    return None
