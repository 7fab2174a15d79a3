"""Extractors: turn the prepared images of one invoice into line items. One interface, several models."""
