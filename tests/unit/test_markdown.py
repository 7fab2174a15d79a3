"""The Markdown table the chaos and rate-limit runs print (local/markdown.py)."""

from __future__ import annotations

from local.markdown import markdown_table


def test_each_column_is_padded_to_its_widest_cell() -> None:
    table = markdown_table(("run", "time s"), [("a long name", "1.5"), ("b", "12.0")])
    assert table.splitlines() == [
        "| run         | time s |",
        "|-------------|--------|",
        "| a long name | 1.5    |",
        "| b           | 12.0   |",
    ]


def test_no_rows_is_the_header_alone() -> None:
    assert markdown_table(("run", "time s"), []) == "| run | time s |\n|-----|--------|"
