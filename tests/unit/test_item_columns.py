"""The one mapping between an item's fields and the legacy columns of invoice_items and ground_truth_items."""

from dataclasses import fields
from decimal import Decimal

from invoice_pipeline.extractor import ExtractedItem
from invoice_pipeline.tables.item_columns import ITEM_COLUMNS, NUMBER_COLUMNS, item_columns, item_from_columns

ITEM = ExtractedItem("Tomatoes", Decimal("2.5"), "kg", Decimal("0.750"), Decimal("1.875"))


def test_the_legacy_columns_keep_their_names_and_order():
    assert list(ITEM_COLUMNS) == ["item_name", "qty", "uom", "unit_price", "net_price"]
    assert set(ITEM_COLUMNS) >= NUMBER_COLUMNS


def test_every_field_of_an_items_value_has_exactly_one_column():
    # where the line was read (page, bbox, source text, confidence) is not part of its value: own columns
    assert sorted(ITEM_COLUMNS.values()) == sorted(field.name for field in fields(ExtractedItem) if field.compare)


def test_an_item_goes_into_the_columns_by_name_and_comes_back_whole():
    columns = item_columns(ITEM)
    assert columns == {
        "item_name": "Tomatoes",
        "qty": Decimal("2.5"),
        "uom": "kg",
        "unit_price": Decimal("0.750"),
        "net_price": Decimal("1.875"),
    }
    assert item_from_columns(list(columns.values())) == ITEM
