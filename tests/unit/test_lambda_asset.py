"""The Lambda asset (``functions/``) holds what the handlers run, and operator-only code lives in ``invoices_cli``.

Every module of the domain must be reached from a handler: through its imports (the graph import-linter reads, lazy
imports included) or as a provider the extractor registry imports by name. The only exceptions are the reads that
``local/`` and the operator both need (``local/`` may not import the CLI), and an import-linter contract in
pyproject.toml keeps those off the handlers' path. A module that no handler imports belongs in ``invoices_cli``.
"""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

from invoice_pipeline.model_names import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = ROOT / "functions" / "invoice_pipeline"
HANDLERS = ("functions.consumer", "functions.producer", "functions.migrate")
# In the asset, imported by no handler: why each is not in invoices_cli.
SHARED_WITH_LOCAL = {
    "invoice_pipeline.tables.ledger_reads": "the ledger's reads: the demo, the chaos harness and the rate-limit run "
    "use them",
    "invoice_pipeline.flows.queue_depth": "the event-source emulator's idle check and `invoices status` read queue "
    "depth",
}


def import_graph() -> grimp.ImportGraph:
    # As in pyproject's [tool.importlinter]: the handlers through the `functions` namespace package, their imports of
    # `invoice_pipeline` resolved to that root; local/ and the CLI to see who imports the shared modules.
    return grimp.build_graph("functions", "invoice_pipeline", "local", "invoices_cli", cache_dir=None)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return import_graph()


def python_modules(folder: Path) -> set[str]:
    """Dotted names of the Python modules under ``folder`` (a code root such as ``functions/``)."""
    modules = set()
    for path in folder.rglob("*.py"):
        parts = path.relative_to(folder).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def domain_modules() -> set[str]:
    return python_modules(DOMAIN.parent) - {handler.removeprefix("functions.") for handler in HANDLERS}


def reached_by_handlers(graph: grimp.ImportGraph) -> set[str]:
    """Modules a handler imports, directly or through others, with the providers the registry loads by name."""
    reached: set[str] = set()
    pending = [*HANDLERS, *(entry.module for entry in PROVIDERS)]
    while pending:
        module = pending.pop()
        if module in reached:
            continue
        reached.add(module)
        pending += graph.find_modules_directly_imported_by(module)
        if module.startswith("invoice_pipeline."):
            pending.append(module.rsplit(".", 1)[0])  # importing a module runs its packages' __init__
    return reached


def test_every_domain_module_is_run_by_a_handler_or_named_as_shared_with_local(graph: grimp.ImportGraph) -> None:
    not_reached = domain_modules() - reached_by_handlers(graph)
    assert not_reached == set(SHARED_WITH_LOCAL), (
        "no handler imports these modules of the Lambda asset: move operator-only code to invoices_cli"
    )


def test_each_shared_module_is_imported_by_local_and_by_the_cli(graph: grimp.ImportGraph) -> None:
    for module in SHARED_WITH_LOCAL:
        importers = graph.find_modules_that_directly_import(module)
        assert any(name.startswith("local.") for name in importers), f"{module}: local/ no longer needs it"
        assert any(name.startswith("invoices_cli.") for name in importers), f"{module}: the CLI no longer needs it"
