"""Emulator CSV ingest speed: N rows in batches of B over HTTP, from the first POST to all batches Completed.

    .venv/bin/python bench/emulator.py [--rows 200000] [--batch 10000] [--object Contact]

Prints records/s (target: >= 50,000 on the project's 2-core machine) and the query extract speed.
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def emulator_process(db: str, extra: list[str] | None = None) -> Iterator[dict[str, str]]:
    """The emulator in its own process (as users run it), so the benchmark client does not share its GIL."""
    command = [
        sys.executable,
        "-m",
        "sfbulk",
        "emulator",
        "--port",
        "0",
        "--json",
        "--db",
        db,
        *(extra or []),
    ]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


NS = "http://www.force.com/2009/06/asyncapi/dataload"


def make_batches(rows: int, batch: int) -> list[bytes]:
    out = []
    for start in range(0, rows, batch):
        buf = io.StringIO()
        buf.write("FirstName,LastName,Email,Title,Department,MailingCity\n")
        for i in range(start, min(rows, start + batch)):
            buf.write(f'First{i},Last{i},user{i}@example.com,Engineer,R&D,"Paris, FR"\n')
        out.append(buf.getvalue().encode("utf-8"))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--db", default=":memory:")
    parser.add_argument("--workers", type=int, default=2, help="the emulator's --workers")
    parser.add_argument(
        "--worker-threads",
        action="store_true",
        help="process batches in threads of the emulator process instead of worker processes",
    )
    args = parser.parse_args()
    batches = make_batches(args.rows, args.batch)
    extra = ["--workers", str(args.workers)] + (["--worker-threads"] if args.worker_threads else [])
    print(f"emulator: sfbulk emulator {' '.join(extra)}")
    with emulator_process(args.db, extra) as emu:
        http = requests.Session()
        token = http.post(
            f"{emu['base_url']}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": emu["client_id"],
                "client_secret": emu["client_secret"],
                "refresh_token": emu["refresh_token"],
            },
        ).json()["access_token"]
        headers = {"X-SFDC-Session": token, "Content-Type": "application/xml; charset=UTF-8"}
        base = f"{emu['base_url']}/services/async/62.0"
        job = http.post(
            f"{base}/job",
            headers=headers,
            data=(
                f'<jobInfo xmlns="{NS}"><operation>insert</operation><object>Contact</object>'
                f"<contentType>CSV</contentType></jobInfo>"
            ),
        ).text
        job_id = job.split("<id>")[1].split("<")[0]
        csv_headers = {**headers, "Content-Type": "text/csv; charset=UTF-8"}
        started = time.perf_counter()
        for body in batches:
            resp = http.post(f"{base}/job/{job_id}/batch", headers=csv_headers, data=body)
            assert resp.status_code == 201, resp.text
        posted = time.perf_counter()
        while True:
            info = http.get(f"{base}/job/{job_id}", headers=headers).text
            done = int(info.split("<numberBatchesCompleted>")[1].split("<")[0])
            failed = int(info.split("<numberBatchesFailed>")[1].split("<")[0])
            if done + failed == len(batches):
                break
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        processed = int(info.split("<numberRecordsProcessed>")[1].split("<")[0])
        assert failed == 0 and processed == args.rows, info
        rate = args.rows / elapsed
        print(
            f"ingest: {args.rows:,} rows in {len(batches)} batches of {args.batch:,}: {elapsed:.2f} s "
            f"(uploads {posted - started:.2f} s) -> {rate:,.0f} records/s (target >= 50,000: "
            f"{'OK' if rate >= 50_000 else 'BELOW TARGET'}, ratio {rate / 50_000:.2f}x)"
        )

        qjob = (
            http.post(
                f"{base}/job",
                headers=headers,
                data=(
                    f'<jobInfo xmlns="{NS}"><operation>query</operation><object>Contact</object>'
                    f"<contentType>CSV</contentType></jobInfo>"
                ),
            )
            .text.split("<id>")[1]
            .split("<")[0]
        )
        started = time.perf_counter()
        batch = (
            http.post(
                f"{base}/job/{qjob}/batch",
                headers=csv_headers,
                data="SELECT Id, FirstName, LastName, Email FROM Contact",
            )
            .text.split("<id>")[1]
            .split("<")[0]
        )
        while (
            "<state>Completed</state>"
            not in http.get(f"{base}/job/{qjob}/batch/{batch}", headers=headers).text
        ):
            time.sleep(0.01)
        results = http.get(f"{base}/job/{qjob}/batch/{batch}/result", headers=headers).text
        total = 0
        for rid in results.split("<result>")[1:]:
            with http.get(
                f"{base}/job/{qjob}/batch/{batch}/result/{rid.split('<')[0]}", headers=headers, stream=True
            ) as resp:
                for chunk in resp.iter_content(65536):
                    total += chunk.count(b"\n")
        elapsed = time.perf_counter() - started
        print(
            f"extract: {args.rows:,} rows ({total - len(results.split('<result>')[1:]):,} data lines) in "
            f"{elapsed:.2f} s -> {args.rows / elapsed:,.0f} records/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
