"""The one dependency layer shared by every function, built on this machine by pip (no Docker)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsii
from aws_cdk import BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from layers.build_layer import PYTHON_VERSION, build_layer

LAYER_SOURCE = Path(__file__).resolve().parent.parent / "layers"
# The Docker image is never pulled: local bundling always succeeds or raises. CDK requires one to be named.
_UNUSED_IMAGE = DockerImage.from_registry(f"public.ecr.aws/sam/build-python{PYTHON_VERSION}")


@jsii.implements(ILocalBundling)
class PipLocalBundling:
    """``pip install --platform`` into the asset's output directory."""

    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        build = build_layer(Path(output_dir))
        print(f"dependency layer: {build.size_mb:.1f} MB unzipped")
        return True


# Lambda's limit for a function's code and layers together, unzipped.
LAMBDA_UNZIPPED_LIMIT_MB = 250
# The offline reader's OCR runtime (requirements-ocr.txt: RapidOCR, onnxruntime, OpenCV, numpy) built for arm64 and
# CPython 3.14 the same way as the dependency layer, measured by bench/layer_sizes.py (2026-12-07).
OCR_RUNTIME_MB = 267.7


def offline_reader_note() -> str:
    """What of the offline reader (``ocr-*`` models) the stack deploys, with the sizes that decide it."""
    return (
        "offline reader: its PDF text-layer path deploys in the dependency layer (pypdfium2); its OCR runtime does "
        f"not ({OCR_RUNTIME_MB:.1f} MB unzipped on its own, Lambda allows {LAMBDA_UNZIPPED_LIMIT_MB} MB for code and "
        "layers together): scans and pages without a text layer are answered 'cannot read here', so a cascade's next "
        "stage reads them"
    )


def dependency_layer(scope: Construct, construct_id: str, runtime: lambda_.Runtime) -> lambda_.LayerVersion:
    return lambda_.LayerVersion(
        scope,
        construct_id,
        description="Runtime dependencies of the invoice pipeline (layers/requirements.txt)",
        compatible_runtimes=[runtime],
        compatible_architectures=[lambda_.Architecture.ARM_64],
        # The asset hash covers requirements.txt and build_layer.py, so a change to either rebuilds the layer.
        code=lambda_.Code.from_asset(
            str(LAYER_SOURCE),
            exclude=["build", "**/__pycache__", "*.pyc", "__init__.py"],
            bundling=BundlingOptions(image=_UNUSED_IMAGE, local=PipLocalBundling()),
        ),
    )
