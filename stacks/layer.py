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
