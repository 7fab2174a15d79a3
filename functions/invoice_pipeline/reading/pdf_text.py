"""Words with their boxes from a PDF page's text layer, and the rule that says whether to trust it.

Most supplier invoices that arrive as PDFs are digital: the text layer holds every character and its exact
position, so reading it is faster and exact where OCR guesses. pypdfium2's text page gives each character
with its loose box (the font's full height, so a line of mixed glyphs has one height); characters are joined
into words until a space, a line change, or a gap wider than ``WORD_GAP`` of the character height.

**When the text layer is usable** (``judge``), measured on the page's characters:

1. at least ``MIN_CHARS`` printable, non-space characters (fewer: a scan without a text layer, or a page with
   a logo only);
2. at most ``MAX_BAD_SHARE`` of them unreadable: no Unicode mapping in the font (pdfium's map error), U+FFFD,
   private-use or control characters (a font without a ToUnicode map yields these instead of text);
3. at least ``MIN_WORDLIKE_SHARE`` of the words of four letters or more look like words of a language: they
   contain a vowel of the Latin alphabets or are in another script (a font whose codes are shifted or
   scrambled yields consonant runs such as "Qvhkqvrb");
4. invisible text (render mode 3: the OCR layer a scanner adds over its image) must also agree with a quick
   OCR sample of the page: a band around the densest text, OCR'd, whose words at least
   ``MIN_OCR_AGREEMENT`` of the text layer's words in that band must match (``agreement``). A scanner's
   poor OCR layer fails this and the page is read by our OCR instead.

A page that fails is read by OCR: the decision is per page, so a digital invoice with one scanned page
attached keeps its text layer on the others.
"""

from __future__ import annotations

import ctypes
import difflib
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

# text, x0, y0, x1, y1, confidence: the OCR box shape (ocr.Box), here in PDF points from the page's top left
Word = tuple[str, float, float, float, float, float]

MIN_CHARS = 20
MAX_BAD_SHARE = 0.05
MIN_WORDLIKE_SHARE = 0.6
MIN_OCR_AGREEMENT = 0.7
WORD_GAP = 0.2  # of the character's height: a wider gap ends a word even without a space character
ROTATED = 0.1  # radians: characters turned further than this are left out
INVISIBLE = 3  # PDF text render mode "neither fill nor stroke"
_VOWELS = frozenset("aeiouyäöüàâáéèêëîïíìôóòûúùœæåøAEIOUYÄÖÜÀÂÁÉÈÊËÎÏÍÌÔÓÒÛÚÙŒÆÅØ")
_WORD = re.compile(r"[^\W\d_]{4,}")


@dataclass(frozen=True)
class TextLayer:
    """One page's text layer: its words, and whether they can be used instead of OCR (and why not)."""

    words: tuple[Word, ...]
    width: float  # page size in points
    height: float
    usable: bool
    reason: str  # why the layer is (not) used, for logs and the benchmark
    invisible: bool = False


def read_words(page: Any) -> tuple[list[Word], int, int, bool]:
    """The page's words (top to bottom as stored), its printable and unreadable character counts, and whether
    most of its text is invisible (render mode 3)."""
    import pypdfium2.raw as pdfium_c

    textpage = page.get_textpage()
    try:
        raw = textpage.raw
        count = pdfium_c.FPDFText_CountChars(raw)
        _, page_height = page.get_size()
        words: list[Word] = []
        printable = bad = invisible = sampled = 0
        rect = pdfium_c.FS_RECTF()
        current: list[str] = []
        box = [0.0, 0.0, 0.0, 0.0]

        def flush() -> None:
            if current:
                words.append(("".join(current), box[0], box[1], box[2], box[3], 1.0))
                current.clear()

        for index in range(count):
            code = pdfium_c.FPDFText_GetUnicode(raw, index)
            if 0xD800 <= code < 0xDC00 and index + 1 < count:  # UTF-16 pairs (emoji, rare symbols)
                following = pdfium_c.FPDFText_GetUnicode(raw, index + 1)
                if 0xDC00 <= following < 0xE000:
                    code = 0x10000 + ((code - 0xD800) << 10) + (following - 0xDC00)
            elif 0xDC00 <= code < 0xE000:
                continue  # the second half of a pair already read
            char = chr(code) if 0 < code < 0x110000 else "\ufffd"
            if char.isspace() or code == 0:
                flush()
                continue
            angle = pdfium_c.FPDFText_GetCharAngle(raw, index)
            if ROTATED < angle < 2 * math.pi - ROTATED:
                flush()  # vertical or rotated text (margin notes) is never part of a table
                continue
            printable += 1
            if _unreadable(char) or pdfium_c.FPDFText_HasUnicodeMapError(raw, index) == 1:
                bad += 1
            if printable % 25 == 1:  # the render mode is per text object: a sample of characters says enough
                sampled += 1
                text_object = pdfium_c.FPDFText_GetTextObject(raw, index)
                if text_object and pdfium_c.FPDFTextObj_GetTextRenderMode(text_object) == INVISIBLE:
                    invisible += 1
            if not pdfium_c.FPDFText_GetLooseCharBox(raw, index, ctypes.byref(rect)):
                continue
            x0, x1 = rect.left, rect.right
            y0, y1 = page_height - rect.top, page_height - rect.bottom
            height = y1 - y0
            if current:
                same_line = min(y1, box[3]) - max(y0, box[1]) > 0.5 * min(height, box[3] - box[1])
                if not same_line or x0 - box[2] > WORD_GAP * height or x0 < box[0]:
                    flush()
            if current:
                box[0], box[1], box[2], box[3] = min(box[0], x0), min(box[1], y0), max(box[2], x1), max(box[3], y1)
            else:
                box[0], box[1], box[2], box[3] = x0, y0, x1, y1
            current.append(char)
        flush()
        return words, printable, bad, sampled > 0 and invisible * 2 > sampled
    finally:
        textpage.close()


def _unreadable(char: str) -> bool:
    category = unicodedata.category(char)
    return char == "\ufffd" or category in ("Co", "Cn", "Cc", "Cs")


def wordlike_share(words: Sequence[Word]) -> float:
    """Share of the letter runs of four or more that look like words (a vowel, or a non-Latin script)."""
    runs = [run for word in words for run in _WORD.findall(word[0])]
    if not runs:
        return 1.0
    good = sum(any(c in _VOWELS for c in run) or (not run.isascii() and not _latin(run)) for run in runs)
    return good / len(runs)


def _latin(run: str) -> bool:
    return all("LATIN" in unicodedata.name(c, "") for c in run)


def judge(words: Sequence[Word], printable: int, bad: int) -> tuple[bool, str]:
    """Rules 1-3 of the module docstring: (usable, reason)."""
    if printable < MIN_CHARS:
        return False, f"no text layer ({printable} characters)"
    if bad > MAX_BAD_SHARE * printable:
        return False, f"garbage text layer ({bad} of {printable} characters unreadable)"
    share = wordlike_share(words)
    if share < MIN_WORDLIKE_SHARE:
        return False, f"garbage text layer (only {share:.0%} of its words look like words)"
    return True, f"text layer ({printable} characters)"


def _loose(text: str) -> str:
    return re.sub(r"\W+", "", text.casefold())


def agreement(layer_words: Sequence[Word], ocr_words: Sequence[str]) -> float:
    """Share of the text layer's words (3+ characters) that the OCR also read (similarity >= 0.8)."""
    expected = [_loose(word[0]) for word in layer_words if len(_loose(word[0])) >= 3]
    if not expected:
        return 1.0
    seen = {_loose(word) for text in ocr_words for word in text.split()}
    seen.discard("")
    found = 0
    for word in expected:
        if word in seen or any(difflib.SequenceMatcher(None, word, other).ratio() >= 0.8 for other in seen):
            found += 1
    return found / len(expected)


def densest_band(words: Sequence[Word], height: float, fraction: float = 0.2) -> tuple[float, float]:
    """The horizontal band (top, bottom in points) of ``fraction`` of the page that holds the most characters."""
    band = height * fraction
    best, best_top = -1, 0.0
    steps = int(1 / fraction * 2)
    for step in range(steps):
        top = min(height - band, step * band / 2)
        chars = sum(len(w[0]) for w in words if w[2] >= top and w[4] <= top + band)
        if chars > best:
            best, best_top = chars, top
    return best_top, best_top + band


def read_page(page: Any, *, ocr_sample: Callable[[tuple[float, float]], list[str]] | None = None) -> TextLayer:
    """The page's text layer and the verdict of the rules; ``ocr_sample(band)`` OCRs a band of the page
    (top and bottom in points) for invisible text. Without it, invisible text is never trusted."""
    words, printable, bad, invisible = read_words(page)
    width, height = page.get_size()
    usable, reason = judge(words, printable, bad)
    if usable and invisible:
        if ocr_sample is None:
            usable, reason = False, "invisible text layer (a scan's OCR layer) and no OCR to check it"
        else:
            top, bottom = densest_band(words, height)
            in_band = [w for w in words if w[2] >= top and w[4] <= bottom]
            score = agreement(in_band, ocr_sample((top, bottom)))
            usable = score >= MIN_OCR_AGREEMENT
            reason = f"invisible text layer, {score:.0%} of its words confirmed by OCR"
    return TextLayer(tuple(words), width, height, usable, reason, invisible)
