"""Printed rows as a PDF's text layer gives them: one box per word, for the reader tests."""

from invoice_pipeline.reading.rows import group_rows

CHAR = 6  # points per character of the fixture "font"
HEIGHT = 10


def words(y, *cells):
    """Boxes of one printed row: (x, text) left-aligned, or (x1, text, "r") right-aligned; one box per word."""
    boxes = []
    for cell in cells:
        x, text = cell[0], cell[1]
        if len(cell) == 3:
            x -= CHAR * len(text)
        for word in text.split(" "):
            boxes.append((word, x, y, x + CHAR * len(word), y + HEIGHT, 1.0))
            x += CHAR * (len(word) + 1)
    return boxes


def page(*rows):
    return group_rows([box for row in rows for box in row])
