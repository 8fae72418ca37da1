"""Bulk load/extract pipeline on top of the connector operations."""
