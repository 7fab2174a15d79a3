"""Invoice extraction pipeline: all the logic behind the producer, consumer and migrate handlers.

The package is a few rooms, each importing only the rooms after it (import-linter holds this; see
docs/architecture.md): ``flows`` (the consumer and the producer), ``providers`` (the extractors), ``pacing``
(token budgets), ``tables`` (the tables and their SQL), then ``reading`` (printed values and lines) and
``documents`` (invoice files and their images), independent of each other. The modules here are the core
every room may import: errors, settings, model names and ids, prices, observability, AWS clients, rate-limit
headers and the extractor port. They import no room. Nothing here is imported at package import.
"""
