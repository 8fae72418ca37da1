"""`make run`: the YAML createJob -> getJob -> updateJob(Closed) flow against a local emulator.

Starts the Salesforce Bulk API emulator in-process on a free port, loads examples/flows.yaml into an
Engine (with a throw-away token registry), sends the three requests through the proxies exactly as an
HTTP caller would, prints each response, and stops the emulator. No Salesforce account needed.
Exit status 0 when every step answered as expected, 1 otherwise. Secrets are never printed: the
requests (which carry the demo app's refresh token and secret) are not shown.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from lxml import etree

from sfbulk import xmlsafe
from sfbulk.emulator import start_emulator
from sfbulk.engine.engine import Engine

HERE = Path(__file__).resolve().parent
FLOWS = HERE / "flows.yaml"
REQUEST_TEMPLATE = HERE / "createJob.xml"
JOB_NS = "{http://www.force.com/2009/06/asyncapi/dataload}"
CONNECTION_SETTINGS = (
    "apiVersion",
    "accessToken",
    "apiUrl",
    "refreshToken",
    "clientId",
    "clientSecret",
    "intervalTime",
    "registryPath",
    "tokenEndpointHostname",
)


def request(root: str, settings: dict[str, str], **fields: str) -> bytes:
    """A request body like examples/createJob.xml: connection settings plus the operation's fields."""
    element = etree.Element(root)
    for name, value in {**settings, **fields}.items():
        etree.SubElement(element, name).text = value
    return etree.tostring(element)


def show(step: str, status: int, reason: str, body: bytes) -> None:
    print(f"\n=== {step}: HTTP {status} {reason}")
    try:
        root = xmlsafe.parse(body)
        etree.indent(root, space="  ")
        print(etree.tostring(root, encoding="unicode"))
    except Exception:  # noqa: BLE001 - not XML: print as it came
        print(body.decode("utf-8", "replace"))


def job_field(body: bytes, name: str) -> str | None:
    try:
        return xmlsafe.parse(body).findtext(f"{JOB_NS}{name}")
    except Exception:  # noqa: BLE001
        return None


def main() -> int:
    with start_emulator() as emulator, tempfile.TemporaryDirectory(prefix="sfbulk-demo-") as registry:
        print(
            f"Emulator (a local Salesforce) at {emulator.base_url}; flows from {FLOWS.relative_to(HERE.parent)}"
        )
        template = xmlsafe.parse(REQUEST_TEMPLATE.read_bytes())
        settings = {name: (template.findtext(name) or "") for name in CONNECTION_SETTINGS}
        # examples/createJob.xml points at http://127.0.0.1:8281 (the emulator's default port)
        settings.update(apiUrl=emulator.base_url, tokenEndpointHostname=emulator.base_url)
        creds = emulator.credentials
        settings.update(
            refreshToken=creds["refresh_token"],
            clientId=creds["client_id"],
            clientSecret=creds["client_secret"],
        )

        with Engine(registry=registry) as engine:
            engine.load(FLOWS)

            def call(proxy: str, body: bytes) -> tuple[int, bytes]:
                result = engine.handle(
                    proxy,
                    method="POST",
                    uri=f"/services/{proxy}",
                    headers=[("Content-Type", "application/xml")],
                    body=body,
                )
                show(proxy, result.status, result.reason, result.body)
                return result.status, result.body

            fields = {name: template.findtext(name) or "" for name in ("operation", "contentType", "object")}
            status, body = call("createJob", request("createJob", settings, **fields))
            job_id = job_field(body, "id")
            if status != 201 or not job_id:
                print("\ncreateJob did not create a job: stopping.", file=sys.stderr)
                return 1

            status, body = call("getJob", request("getJob", settings, jobId=job_id))
            if status != 200 or job_field(body, "state") != "Open":
                print("\ngetJob did not return the open job.", file=sys.stderr)
                return 1

            status, body = call("updateJob", request("updateJob", settings, jobId=job_id, state="Closed"))
            if status != 200 or job_field(body, "state") != "Closed":
                print("\nupdateJob did not close the job.", file=sys.stderr)
                return 1

    print(f"\nDone: job {job_id} created, read back and closed through the YAML flows.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
