"""``make demo``: the pipeline on one offline machine (embedded Postgres, moto).

So far the demo brings up the local stack and applies the schema migrations; the producer, consumer and
event-source emulator join it as they land.
"""

from __future__ import annotations

import time

from invoice_pipeline import settings
from invoice_pipeline.schema import migrate_database
from local.aws import MotoServer, patched_environment
from local.postgres import EmbeddedPostgres


def main() -> int:
    started = time.monotonic()
    with EmbeddedPostgres() as postgres, MotoServer() as moto:
        env = {**moto.environment(), "DATABASE_URL": postgres.dsn, "DB_SSLMODE": "disable"}
        with patched_environment(env):
            settings.clear_cache()
            print(f"Postgres: {postgres.host}:{postgres.port}  moto: {moto.endpoint_url}")
            result = migrate_database()
            print(f"migrations applied: {', '.join(result['applied']) or 'none'}")  # type: ignore[arg-type]
    print(f"local stack stopped cleanly after {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
