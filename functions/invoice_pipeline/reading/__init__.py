"""What is printed on an invoice, read into values and lines: numbers and currencies as printed, one vocabulary
of column titles and summary words, the words of a PDF's text layer, words with positions into rows and the
rows into items (a header-based and a layout-free reader, ranked), and the arithmetic checks of what was read.

Pure logic: may import the core only (no database, no AWS, no model SDK); never another room.
"""
