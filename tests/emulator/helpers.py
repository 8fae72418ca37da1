"""Small HTTP helpers for emulator tests (plain requests against the real server)."""

from __future__ import annotations

import time
from typing import Any

import requests
from lxml import etree

NS = "http://www.force.com/2009/06/asyncapi/dataload"
VERSION = "62.0"


def job_xml(**fields: str) -> str:
    body = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="{NS}">{body}</jobInfo>'


def parse(text: bytes | str) -> dict[str, str]:
    root = etree.fromstring(text.encode() if isinstance(text, str) else text)
    return {etree.QName(el).localname: el.text or "" for el in root}


class Bulk:
    """A minimal Bulk API client for tests."""

    def __init__(
        self, base_url: str, token: str, version: str = VERSION, session: requests.Session | None = None
    ):
        self.base = f"{base_url}/services/async/{version}"
        self.token = token
        self.http = session or requests.Session()

    def headers(self, content_type: str = "application/xml; charset=UTF-8") -> dict[str, str]:
        return {"X-SFDC-Session": self.token, "Content-Type": content_type}

    def post(
        self, path: str, data: Any, content_type: str = "application/xml; charset=UTF-8", **kw: Any
    ) -> requests.Response:
        return self.http.post(
            self.base + path, data=data, headers={**self.headers(content_type), **kw}, timeout=30
        )

    def get(self, path: str, content_type: str = "application/xml; charset=UTF-8") -> requests.Response:
        return self.http.get(self.base + path, headers=self.headers(content_type), timeout=30)

    def create_job(self, operation: str, obj: str, content_type: str = "CSV", **extra: str) -> str:
        resp = self.post("/job", job_xml(operation=operation, object=obj, contentType=content_type, **extra))
        assert resp.status_code == 201, resp.text
        return parse(resp.content)["id"]

    def add_batch(self, job_id: str, data: Any, content_type: str = "text/csv") -> str:
        resp = self.post(f"/job/{job_id}/batch", data, content_type)
        assert resp.status_code == 201, resp.text
        if content_type.startswith("application/json"):
            return str(resp.json()["id"])
        return parse(resp.content)["id"]

    def batch(self, job_id: str, batch_id: str, as_json: bool = False) -> dict[str, Any]:
        resp = self.get(f"/job/{job_id}/batch/{batch_id}")
        assert resp.status_code == 200, resp.text
        return resp.json() if as_json else parse(resp.content)

    def wait(self, job_id: str, batch_id: str, timeout: float = 30, as_json: bool = False) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            info = self.batch(job_id, batch_id, as_json)
            if info["state"] in ("Completed", "Failed", "NotProcessed"):
                return info
            if time.monotonic() > deadline:
                raise AssertionError(f"batch {batch_id} still {info['state']}")
            time.sleep(0.02)

    def close(self, job_id: str) -> requests.Response:
        return self.post(f"/job/{job_id}", job_xml(state="Closed"))
