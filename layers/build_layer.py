"""Build the dependency layer without Docker: pip downloads wheels for Lambda's platform (arm64, CPython 3.14).

Used by the CDK asset's local bundling (``stacks/layer.py``) and by the infrastructure tests. Run by hand:
``python layers/build_layer.py OUT_DIR`` writes ``OUT_DIR/python/...`` and prints the unzipped size.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REQUIREMENTS = Path(__file__).resolve().with_name("requirements.txt")
PYTHON_VERSION = "3.14"
# manylinux_2_28 as well as 2014: with 2014 alone pip settles for older releases of some packages.
PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
# Already in the Lambda runtime (pulled in here by aws-xray-sdk); a second copy only adds megabytes.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
PRUNED_DIRECTORIES = ("__pycache__", "tests")


@dataclass(frozen=True)
class LayerBuild:
    site_packages: Path
    size_bytes: int

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1_000_000


class LayerBuildError(RuntimeError):
    """pip could not produce the layer; the message carries pip's output."""


def pip_command(target: Path, requirements: Path = REQUIREMENTS, python: str = sys.executable) -> list[str]:
    platforms = [arg for platform in PLATFORMS for arg in ("--platform", platform)]
    return [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        *platforms,
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--target",
        str(target),
        "--no-compile",
        "-r",
        str(requirements),
    ]


def build_layer(output_dir: Path, requirements: Path = REQUIREMENTS, python: str = sys.executable) -> LayerBuild:
    """Install the requirements into ``output_dir/python`` (the path Lambda puts on sys.path) and prune it."""
    site_packages = Path(output_dir) / "python"
    site_packages.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(  # noqa: S603 - a fixed pip command line, no shell
        pip_command(site_packages, requirements, python), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise LayerBuildError(f"pip failed building the layer from {requirements}:\n{result.stdout}{result.stderr}")
    prune(site_packages)
    return LayerBuild(site_packages=site_packages, size_bytes=directory_size(site_packages))


def prune(site_packages: Path) -> None:
    """Drop what Lambda never runs: console scripts, tests, bytecode and the runtime's own boto stack."""
    shutil.rmtree(site_packages / "bin", ignore_errors=True)
    for name in PRUNED_DIRECTORIES:
        for directory in sorted(site_packages.rglob(name), reverse=True):
            if directory.is_dir():
                shutil.rmtree(directory, ignore_errors=True)
    for distribution in PROVIDED_BY_RUNTIME:
        shutil.rmtree(site_packages / distribution, ignore_errors=True)
        for metadata in site_packages.glob(f"{distribution}-*.dist-info"):
            shutil.rmtree(metadata, ignore_errors=True)


def directory_size(path: Path) -> int:
    return sum(file.stat().st_size for file in path.rglob("*") if file.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output_dir", type=Path, help="directory to build into (the layer is OUTPUT_DIR/python)")
    args = parser.parse_args(argv)
    build = build_layer(args.output_dir)
    print(f"layer built in {build.site_packages}: {build.size_mb:.1f} MB unzipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
