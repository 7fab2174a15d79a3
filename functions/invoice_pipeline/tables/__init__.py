"""The tables and their SQL: each table has one owning module (the ledger, the items, the orders it only
reads), statements as named constants with bound parameters; the connection pool and the migration runner
(the SQL files stay in ``invoice_pipeline/migrations/``).

May import reading, documents and the core; never pacing, the providers or the flows.
"""
