"""A minimal Bulk API 2.0 client for emulator tests (plain requests against the real server)."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import requests

VERSION = "62.0"
FINAL = ("JobComplete", "Failed", "Aborted")


class Bulk2:
    def __init__(self, base_url: str, token: str, version: str = VERSION):
        self.base = f"{base_url}/services/data/v{version}/jobs"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.base + path, timeout=30, **kw)

    def create(self, kind: str = "ingest", **doc: Any) -> dict[str, Any]:
        resp = self.request("POST", f"/{kind}", json=doc)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def upload(self, job_id: str, data: str | bytes, **headers: str) -> requests.Response:
        body = data.encode("utf-8") if isinstance(data, str) else data
        return self.request(
            "PUT", f"/ingest/{job_id}/batches", data=body, headers={"Content-Type": "text/csv", **headers}
        )

    def patch(self, job_id: str, state: str, kind: str = "ingest") -> requests.Response:
        return self.request("PATCH", f"/{kind}/{job_id}", json={"state": state})

    def info(self, job_id: str, kind: str = "ingest") -> dict[str, Any]:
        resp = self.request("GET", f"/{kind}/{job_id}")
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def wait(self, job_id: str, kind: str = "ingest", timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.info(job_id, kind)
            if info["state"] in FINAL:
                return info
            assert time.monotonic() < deadline, f"job {job_id} still {info['state']}"
            time.sleep(0.02)

    def load(self, data: str, **doc: Any) -> dict[str, Any]:
        """Create an ingest job, upload ``data``, close it and wait for a final state."""
        job = self.create("ingest", **doc)
        resp = self.upload(job["id"], data)
        assert resp.status_code == 201, resp.text
        assert self.patch(job["id"], "UploadComplete").status_code == 200
        return self.wait(job["id"])

    def results(self, job_id: str, what: str) -> str:
        resp = self.request("GET", f"/ingest/{job_id}/{what}")
        assert resp.status_code == 200, resp.text
        assert resp.headers["Content-Type"] == "text/csv; charset=UTF-8"
        return resp.text

    def query(self, soql: str, operation: str = "query", **doc: Any) -> dict[str, Any]:
        job = self.create("query", operation=operation, query=soql, **doc)
        return self.wait(job["id"], "query")


def rows(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter))


def error(resp: requests.Response) -> tuple[int, str, str]:
    """(status, errorCode, message) of a Bulk 2.0 error answer, checking its JSON-array shape."""
    assert resp.headers["Content-Type"] == "application/json", resp.headers
    body = resp.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"errorCode", "message"}, body
    return resp.status_code, body[0]["errorCode"], body[0]["message"]
