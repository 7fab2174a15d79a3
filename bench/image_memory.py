"""Peak memory of preparing each input of the hostile corpus: the code before the header checks vs now.

Each input is prepared in its own fresh interpreter (``local.image_corpus.peak_rss_of_preparation``), once with
``images.py`` as it was at ``--before`` (default: the commit before the header checks) and once with the current
one, and the two peaks are printed side by side with their ratio. The old code's 1 x 2,000,000 px PNG alone
takes about a minute and 1.2 GB.

Run: ``.venv/bin/python bench/image_memory.py [--before REVISION]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]

from local.image_corpus import peak_rss_of_preparation, write_corpus  # noqa: E402

RENAMED_IMPORTS = {
    "invoice_pipeline.extraction.base": "invoice_pipeline.extractor",
    "invoice_pipeline.urls": "invoice_pipeline.documents.urls",
}
BEFORE_REVISION = "d02a892"  # main before the header checks (issue 12)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE_REVISION, help="git revision of the images.py to compare with")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        old_source = subprocess.run(
            ["git", "show", f"{args.before}:functions/invoice_pipeline/images.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # The old module imports the package's modules by the names they had before the domain was split into rooms.
        for old, new in RENAMED_IMPORTS.items():
            old_source = old_source.replace(f"from {old} import", f"from {new} import")
        (directory / "images_before.py").write_text(old_source)
        corpus = write_corpus(directory / "corpus")
        print(f"peak RSS of one preparation, each in a fresh interpreter (images.py at {args.before} vs now)")
        print(f"{'input':<24}{'bytes':>9}{'before MB':>11}{'after MB':>10}{'ratio':>8}  outcome now")
        for name, path in corpus.items():
            before = peak_rss_of_preparation(path, module="images_before", extra_path=directory)
            after = peak_rss_of_preparation(path)
            ratio = before.peak_rss_mb / after.peak_rss_mb
            outcome = after.outcome if len(after.outcome) <= 70 else after.outcome[:67] + "..."
            print(
                f"{name:<24}{path.stat().st_size:>9}{before.peak_rss_mb:>11.0f}{after.peak_rss_mb:>10.0f}"
                f"{ratio:>7.1f}x  {outcome}"
            )
            if before.refused != after.refused:
                print(f"{'':<24}before: {before.outcome[:100]}")
        print(f"interpreter with Pillow imported, before reading any input: {after.baseline_rss_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
