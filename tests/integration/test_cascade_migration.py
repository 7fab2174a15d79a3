"""The cascade migration (0012) on a database that already holds items and jobs: every row kept, the new columns
(``invoice_items.stage``, ``extraction_jobs.stage_answers``) NULL on them."""

from tests.integration.expand_migrations import ITEMS, JOBS, upgrade_with_rows

CASCADE = 12


def test_the_migration_keeps_every_row_and_leaves_old_rows_without_a_stage(empty_database, monkeypatch):
    upgrade = upgrade_with_rows(empty_database, monkeypatch, CASCADE)
    assert [name for name in upgrade.applied if name.startswith("0012")] == ["0012_cascade_stage"]
    assert upgrade.rows_without(ITEMS, {"stage"}) == upgrade.items_before
    assert upgrade.new_values(ITEMS, ["stage"]) == [[None], [None]]
    assert upgrade.rows_without(JOBS, {"stage_answers"}) == upgrade.jobs_before
    assert upgrade.new_values(JOBS, ["stage_answers"]) == [[None]]
