"""The connection pool gives each thread its own connection (the event-source emulator runs handlers in threads)."""

from __future__ import annotations

import threading

from invoice_pipeline.tables.db import pool


def test_each_thread_gets_its_own_connection_and_reuses_it(database: str) -> None:
    backend_pids: dict[str, list[int]] = {}

    def use_twice(name: str) -> None:
        pids = []
        for _ in range(2):
            with pool.connection() as connection:
                pids.append(connection.run("SELECT pg_backend_pid()")[0][0])
        backend_pids[name] = pids
        pool.discard()

    threads = [threading.Thread(target=use_twice, args=(f"t{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert all(first == second for first, second in backend_pids.values())
    assert len({pids[0] for pids in backend_pids.values()}) == 3
