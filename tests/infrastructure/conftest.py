"""Synthesize the stack in-process (asset bundling skipped) and hand tests the template as a dict.

Synth takes several seconds, so each module synthesizes once through a module-scoped fixture.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk import App
from aws_cdk.assertions import Template

from stacks.app import configure_app
from stacks.pipeline_stack import InvoicePipelineStack

ROOT = Path(__file__).resolve().parents[2]
ACKNOWLEDGED_RULES = "aws:cdk:acknowledged-rules"


def example_context() -> dict[str, Any]:
    """The committed cdk.json context: the values `make synth` uses."""
    return json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass
class Synthesized:
    app: App
    stack: InvoicePipelineStack
    template: Template
    template_json: dict[str, Any]  # what the template assertions read, without a round trip to jsii each time
    template_path: Path
    context: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template_json["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def acknowledgments(self) -> dict[str, dict[str, str]]:
        """Construct path -> {rule id: reason} for every acknowledged cdk-nag finding."""
        found: dict[str, dict[str, str]] = {}
        for construct in self.app.node.find_all():
            for entry in construct.node.metadata:
                if entry.type == ACKNOWLEDGED_RULES:
                    found.setdefault(construct.node.path, {}).update(entry.data)
        return found


def synthesize(outdir: Path, **overrides: Any) -> Synthesized:
    """Build and synthesize the app like `cdk synth` does, cdk-nag included (a finding raises)."""
    context = {**example_context(), **overrides}
    app = App(context={**context, "aws:cdk:bundling-stacks": []}, outdir=str(outdir))
    stack = configure_app(app)
    assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    return Synthesized(
        app=app,
        stack=stack,
        template=Template.from_json(artifact.template),
        template_json=artifact.template,
        template_path=Path(artifact.template_full_path),
        context=context,
    )


def cfn_lint(template_path: Path) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).with_name("cfn-lint")
    return subprocess.run(
        [str(executable), "-i", "W3005", "--", str(template_path)], capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("cdk-example"))
