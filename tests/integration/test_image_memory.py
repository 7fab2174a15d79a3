"""Peak memory of preparing each hostile or heavy input, measured in a child process (the function has 1024 MB).

Before the header checks, the 4 KB PNG of 1 x 2,000,000 pixels peaked at 1.2 GB on its way to being refused
(bench/image_memory.py prints before and after side by side).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from local.image_corpus import peak_rss_of_preparation, write_corpus

# Well inside the 1024 MB function, which also holds the fetched bytes (<= MAX_IMAGE_BYTES), the SDK and the
# other invoices' prepared segments. The interpreter with Pillow imported is about 35 MB of it.
PEAK_RSS_BOUND_MB = 300

EXPECTED = {
    "tall_1x2000000.png": "refused: s3://corpus/tall_1x2000000.png is 1x2000000 pixels: it makes 1999999 segments",
    "wide_2000000x1.png": "refused: s3://corpus/wide_2000000x1.png is 2000000x1 pixels, wider than 10:1",
    "bomb_100mp.png": "refused: s3://corpus/bomb_100mp.png is too large to decode safely: Image size (100000000",
    "photo_40mp.jpg": "accepted, 1 segment(s)",
    "scan_40mp.png": "accepted, 1 segment(s)",
    "receipt_1000x15000.png": "accepted, 9 segment(s)",
    "pdf_10_pages.pdf": "accepted, 10 segment(s)",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    paths = write_corpus(tmp_path_factory.mktemp("corpus"))
    assert all(path.stat().st_size < 1_000_000 for path in paths.values())  # small on disk, heavy in memory
    return paths


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_input_of_the_corpus_is_prepared_or_refused_within_the_memory_bound(
    corpus: dict[str, Path], name: str
) -> None:
    measured = peak_rss_of_preparation(corpus[name])
    assert measured.outcome.startswith(EXPECTED[name])
    assert measured.peak_rss_mb < PEAK_RSS_BOUND_MB, f"{name}: {measured.peak_rss_mb:.0f} MB"
