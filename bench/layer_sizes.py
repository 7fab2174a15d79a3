"""What the offline reader would add to the Lambda functions: the dependency layer and the OCR runtime, each built the
way the stack builds its layer (pip for arm64 and CPython 3.14, no Docker), measured unzipped against Lambda's limit
of 250 MB for a function's code and layers together.

The stack deploys the offline reader's PDF text-layer path (pypdfium2 is in the dependency layer) and prints at synth
whether the OCR runtime fits; ``stacks/layer.py`` holds the OCR figure this bench measured. Needs the package
registry (pip downloads the wheels); about a minute.

    .venv/bin/python bench/layer_sizes.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "functions"), str(ROOT)]
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")  # stacks.layer loads the CDK

from layers.build_layer import REQUIREMENTS, build_layer, directory_size  # noqa: E402
from stacks.layer import LAMBDA_UNZIPPED_LIMIT_MB, OCR_RUNTIME_MB  # noqa: E402

OCR_REQUIREMENTS = ROOT / "requirements-ocr.txt"
CODE = ROOT / "functions"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="layer-sizes-") as scratch:
        dependencies = build_layer(Path(scratch) / "dependencies", REQUIREMENTS)
        ocr = build_layer(Path(scratch) / "ocr", OCR_REQUIREMENTS)
        # What the OCR runtime adds beyond the dependency layer (Pillow is in both).
        shared = {path.name for path in dependencies.site_packages.iterdir()}
        extra = sum(
            directory_size(path) if path.is_dir() else path.stat().st_size
            for path in ocr.site_packages.iterdir()
            if path.name not in shared
        )
    code_mb = directory_size(CODE) / 1e6
    rows = [
        ("function code (functions/)", code_mb),
        ("dependency layer (layers/requirements.txt)", dependencies.size_mb),
        ("OCR runtime alone (requirements-ocr.txt)", ocr.size_mb),
        ("OCR runtime beyond the dependency layer", extra / 1e6),
    ]
    for name, size in rows:
        print(f"{name:<48}{size:8.1f} MB")
    total = code_mb + dependencies.size_mb + extra / 1e6
    fits = total <= LAMBDA_UNZIPPED_LIMIT_MB
    verdict = "fits" if fits else "does NOT fit"
    print(f"{'code + layer + OCR runtime':<48}{total:8.1f} MB  (limit {LAMBDA_UNZIPPED_LIMIT_MB} MB: {verdict})")
    deployed = "could be" if fits else "no"
    print(f"text-layer path deployed: yes (pypdfium2 in the dependency layer); OCR deployed: {deployed}")
    if abs(ocr.size_mb - OCR_RUNTIME_MB) > 5:
        print(f"note: stacks/layer.py says the OCR runtime is {OCR_RUNTIME_MB} MB; update it to {ocr.size_mb:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
