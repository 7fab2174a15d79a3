"""An order's invoice files: where they are (``orders.invoice_image`` -> allow-listed S3 objects), fetching
them, and preparing their pages as the images a model or a document service reads.

May import the core only; never another room.
"""
