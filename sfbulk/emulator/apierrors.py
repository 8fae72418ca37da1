"""Errors the emulator answers with: Salesforce's exceptionCode + exceptionMessage and an HTTP status."""

from __future__ import annotations


class BulkApiError(Exception):
    """Answered as an ``<error>`` document (or its JSON form) with ``status``."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code} : {message}")
        self.code = code
        self.message = message
        self.status = status


class BatchFailure(Exception):
    """The batch content is unusable: the batch ends ``Failed`` with ``stateMessage`` ``CODE : message``."""

    def __init__(self, message: str, code: str = "InvalidBatch"):
        super().__init__(f"{code} : {message}")
        self.state_message = f"{code} : {message}"
