"""Bulk API 2.0 for ``sfbulk load --api 2`` / ``sfbulk extract --api 2`` (imports nothing: start-up time)."""
