"""Every chaos scenario at a small size: nothing lost, nothing duplicated, nothing half-written.

``bench/chaos.py`` runs the same scenarios with hundreds of orders and prints the table.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from local.aws import MotoServer
from local.chaos import SCENARIOS, run_scenario
from local.postgres import EmbeddedPostgres

ORDERS = 8


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    """A server of its own for the scenario that restarts it (the session's server stays untouched)."""
    with EmbeddedPostgres() as server:
        yield server


# pg-restart and s3 have tests of their own below.
@pytest.mark.parametrize("name", [name for name in SCENARIOS if name not in ("pg-restart", "s3")])
def test_scenario_keeps_every_promise(name: str, postgres: EmbeddedPostgres, database: str, aws: MotoServer) -> None:
    result = run_scenario(name, postgres, database, aws, orders=ORDERS)
    assert result.problems == []
    assert (result.lost, result.duplicates, result.wrong, result.half_written) == (0, 0, 0, 0)
    assert result.faults, "the scenario injected no fault"


def test_server_restarts_during_a_run_keep_every_promise(own_postgres: EmbeddedPostgres, aws: MotoServer) -> None:
    from local.chaos import fresh_database

    result = run_scenario("pg-restart", own_postgres, fresh_database(own_postgres, "restart"), aws, orders=ORDERS)
    assert result.problems == []
    # Two restarts are scheduled 0.7 s apart; a run that drains sooner sees only the first: at least one happened.
    assert result.faults["pg_restart"] >= 1


def test_permanent_faults_reach_the_dlq_and_the_redrive_recovers_what_can_be(
    postgres: EmbeddedPostgres, database: str, aws: MotoServer
) -> None:
    result = run_scenario("s3", postgres, database, aws, orders=ORDERS)
    assert result.problems == []
    assert (result.lost, result.duplicates, result.wrong, result.half_written) == (0, 0, 0, 0)
    assert result.faults["s3_throttle"] > 0
    # missing objects and oversize objects fail permanently; after the upload only the oversize ones stay.
    assert result.dlq == result.faults["s3_missing"] + result.faults["s3_oversize"]
    assert result.dlq_final == result.faults["s3_oversize"]
