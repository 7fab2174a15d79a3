"""Chaos runs of the local pipeline: faults injected while the real handlers run, then the promises checked.

The promises (docs/architecture.md §1 and §5): every eligible ``(order, model)`` ends ``done`` with exactly its
known items, or ``failed`` with a reason and its message in the DLQ; no item is written twice; the ledger's
``item_count`` equals the rows in ``invoice_items``; and once the faults stop, a DLQ redrive brings every
recoverable order to ``done``.

A scenario runs on the local stack (embedded Postgres, moto in server mode, the model emulator): orders are
arranged, the producer handler enqueues them, the SQS event-source emulator drives ``consumer.handler`` while
faults are on, the invariants are checked, the faults stop, what was broken is fixed, the DLQ is moved back
(the local mover), the queue drained again and the invariants checked once more. Nothing in the pipeline is
patched: faults come from the outside (the model emulator's fault injection, a botocore event hook on the
boto3 session that answers some S3 GetObject calls with a throttling response, ``pg_terminate_backend`` and
server restarts, a wrapper around the handler that crashes after the real handler returned).

One module per concern, each importing only those before it:
``data`` (orders with known items) -> ``database`` (harness connections) -> ``faults`` (injectors) ->
``invariants`` (the checks) -> ``stack`` (one scenario's stack) -> ``scenarios`` (the 13 scenarios, a run) ->
``rendering`` (the table). Used by ``tests/reliability`` (small sizes) and ``bench/chaos.py`` (larger sizes).
"""

from local.chaos.data import BUCKET, HOSTILE_TEXT, MODEL, OPENAI_TEST_KEY, ChaosInvoice, ChaosOrder, make_orders
from local.chaos.database import connect, fresh_database
from local.chaos.faults import BackendKiller, RecordingHandler, S3Faults, ServerRestarter
from local.chaos.invariants import Check, check_invariants
from local.chaos.rendering import table
from local.chaos.scenarios import SCENARIOS, Run, ScenarioResult, run_scenario
from local.chaos.stack import ChaosConfig, ChaosStack

__all__ = [
    "BUCKET",
    "HOSTILE_TEXT",
    "MODEL",
    "OPENAI_TEST_KEY",
    "SCENARIOS",
    "BackendKiller",
    "ChaosConfig",
    "ChaosInvoice",
    "ChaosOrder",
    "ChaosStack",
    "Check",
    "RecordingHandler",
    "Run",
    "S3Faults",
    "ScenarioResult",
    "ServerRestarter",
    "check_invariants",
    "connect",
    "fresh_database",
    "make_orders",
    "run_scenario",
    "table",
]
