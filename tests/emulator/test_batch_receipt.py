"""The add-batch answer is the batch as received (``Queued``), whatever the worker model.

Salesforce's answer "only acknowledges that the batch was received" (bulk-api.md §1.5); clients
such as the WSO2 integration tests assert ``Queued`` there. Tiny batches are done by a worker within
microseconds, so an answer read back after handing the batch over would often say Completed.
"""

from __future__ import annotations

import pytest
from helpers import Bulk, parse  # type: ignore[import-not-found]

ROUNDS = 200


def _hammer(bulk: Bulk, content_type: str) -> list[str]:
    """States in the add-batch answers of ``ROUNDS`` one-row batches added as fast as possible."""
    if content_type == "JSON":
        job = bulk.create_job("insert", "Contact", "JSON")
        media, body = "application/json", b'[{"LastName": "Receipt"}]'
    else:
        job = bulk.create_job("insert", "Contact")
        media, body = "text/csv", b"LastName\nReceipt\n"
    states = []
    for _ in range(ROUNDS):
        resp = bulk.post(f"/job/{job}/batch", body, media)
        assert resp.status_code == 201, resp.text
        doc = resp.json() if content_type == "JSON" else parse(resp.content)
        states.append(doc["state"])
        assert doc["numberRecordsProcessed"] in (0, "0")
    last = resp.json()["id"] if content_type == "JSON" else parse(resp.content)["id"]
    assert bulk.wait(job, last, as_json=content_type == "JSON")["state"] == "Completed"  # the batches do run
    return states


@pytest.mark.parametrize("content_type", ["CSV", "JSON"])
def test_add_batch_answers_queued_with_worker_threads(emulator, content_type: str) -> None:
    states = _hammer(Bulk(emulator.base_url, emulator.issue_token()), content_type)
    assert states == ["Queued"] * ROUNDS


@pytest.mark.slow  # starts worker interpreters
def test_add_batch_answers_queued_with_worker_processes(emulator_factory) -> None:
    emu = emulator_factory(worker_processes=True, workers=2)
    states = _hammer(Bulk(emu.base_url, emu.issue_token()), "CSV")
    assert states == ["Queued"] * ROUNDS
