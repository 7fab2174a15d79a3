"""The dependency layer really builds for Lambda (arm64, CPython 3.14) without Docker, and stays small.

Downloads wheels from the package index (tens of seconds, quicker with pip's cache); skipped only when the
index cannot be reached at all.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from layers.build_layer import PROVIDED_BY_RUNTIME, LayerBuild, build_layer
from tests.setup_required import missing

LAMBDA_LAYER_LIMIT_BYTES = 250 * 1024 * 1024
EXPECTED_PACKAGES = (
    "aws_lambda_powertools",
    "aws_xray_sdk",
    "openai",
    "pg8000",
    "pydantic",
    "pydantic_core",
    "PIL",
    "pypdfium2",
)

pytestmark = pytest.mark.slow


def package_index() -> str:
    configured = os.environ.get("PIP_INDEX_URL")
    if not configured:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True,
            text=True,
            check=False,
        )
        configured = result.stdout.strip() if result.returncode == 0 else ""
    return configured or "https://pypi.org/simple"


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> LayerBuild:
    index = urlsplit(package_index())
    try:
        socket.create_connection((index.hostname, index.port or 443), timeout=5).close()
    except OSError as error:
        missing(f"package index {index.hostname} unreachable ({error}): the layer cannot be downloaded")
    return build_layer(tmp_path_factory.mktemp("layer"))


def test_layer_holds_every_runtime_dependency(layer: LayerBuild) -> None:
    present = {path.name for path in layer.site_packages.iterdir()}
    missing = [name for name in EXPECTED_PACKAGES if name not in present]
    assert not missing, f"missing from the layer: {missing}"


def test_native_wheels_are_for_arm64_and_cpython_3_14(layer: LayerBuild) -> None:
    core = list((layer.site_packages / "pydantic_core").glob("_pydantic_core*.so"))
    assert [path.name for path in core] == ["_pydantic_core.cpython-314-aarch64-linux-gnu.so"]
    wheel_tags = layer.site_packages / next(layer.site_packages.glob("pydantic_core-*.dist-info")).name / "WHEEL"
    tags = [line.split(": ", 1)[1] for line in wheel_tags.read_text().splitlines() if line.startswith("Tag: ")]
    assert tags and all(tag.startswith("cp314-cp314-manylinux") and tag.endswith("aarch64") for tag in tags)
    for shared_object in layer.site_packages.rglob("*.so"):
        assert "x86_64" not in shared_object.name, shared_object


def test_runtime_provided_and_useless_files_are_pruned(layer: LayerBuild) -> None:
    for name in PROVIDED_BY_RUNTIME:
        assert not (layer.site_packages / name).exists(), name
        assert not list(layer.site_packages.glob(f"{name}-*.dist-info")), name
    assert not (layer.site_packages / "bin").exists()
    assert not list(layer.site_packages.rglob("__pycache__"))
    assert not [p for p in layer.site_packages.rglob("tests") if p.is_dir()]


def test_layer_fits_lambdas_limit_with_room_for_the_code(layer: LayerBuild) -> None:
    print(f"layer size: {layer.size_mb:.1f} MB unzipped")
    assert layer.size_bytes < LAMBDA_LAYER_LIMIT_BYTES // 2
