"""Server throughput and latency: `python bench/server.py [--workers 1,2,4] [--clients 1,8,32] [--requests 400]`
(`make bench-server`).

Three kinds of processes, as in production: the emulator (`sfbulk emulator`), the server (`sfbulk
serve` with the seed proxy `examples/synapse/salesforcebulk_createJob.xml`, restarted with
`--workers W` for each W given) and this client process. For each worker count W and client count
N, N threads with one `requests.Session` each send createJob requests:

  (a) through the seed proxy over HTTP (the seed's createJob.xml, `Content-Type: text/xml`), and
  (b) straight to the emulator's `POST /services/async/34.0/job` (the plain jobInfo the proxy sends),

in the same run, with the same clients. Printed: requests/s, p50 and p99 latency for both, and the
ratios (a)/(b): what serving and mediating cost on top of the Salesforce call itself; then, for
each proxy row, the CPU time per request of the client, the server (supervisor and workers) and
the emulator, read from /proc: what the run leaves of the cores, and what a host with more free
cores can divide among more workers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
SEED_PROXY = ROOT / "examples" / "synapse" / "salesforcebulk_createJob.xml"
FAULT_SEQ = ROOT / "examples" / "synapse" / "faultHandlerSeq.xml"
API_VERSION = "34.0"
JOB_INFO = (
    b'<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
    b"<operation>insert</operation><object>Contact</object><contentType>CSV</contentType></jobInfo>"
)


def _start(
    args: list[str], ready: Callable[[str], str | None], cwd: Path
) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sfbulk", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        found = ready(line)
        if found:
            return proc, found
    proc.kill()
    raise SystemExit(f"sfbulk {args[0]} did not start")


def start_emulator(work: Path) -> tuple[subprocess.Popen[str], str]:
    """``sfbulk emulator`` on a free port: (process, base URL)."""
    return _start(
        ["emulator", "--port", "0", "--json"],
        lambda line: json.loads(line)["base_url"] if line.startswith("{") else None,
        work,
    )


def start_seed_server(
    work: Path, base_url: str, threads: int, workers: int = 1
) -> tuple[subprocess.Popen[str], str]:
    """``sfbulk serve --workers W`` with the seed proxy against the emulator at ``base_url``: (process, URL).

    ``--token-endpoint`` is the emulator: the seed proxy never passes one, and it is also what the
    outbound allow-list admits.
    """
    return _start(
        [
            "serve",
            str(SEED_PROXY),
            str(FAULT_SEQ),
            "--port",
            "0",
            "--registry",
            str(work / "registry"),
            "--threads",
            str(threads),
            "--workers",
            str(workers),
            "--no-access-log",
            "--token-endpoint",
            base_url,
        ],
        lambda line: (
            line.split(" at ", 1)[1].split("/services/", 1)[0] if line.startswith("sfbulk serving") else None
        ),
        work,
    )


def demo_token(base_url: str) -> str:
    """An access token of the emulator's public demo app."""
    return str(
        requests.post(
            f"{base_url}/services/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": "sfbulk-demo-client-id",
                "client_secret": "sfbulk-demo-client-secret",
                "refresh_token": "sfbulk-demo-refresh-token",
            },
            timeout=10,
        ).json()["access_token"]
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def run_clients(
    clients: int, total: int, send: Callable[[requests.Session], int]
) -> tuple[float, list[float]]:
    """``total`` requests from ``clients`` threads; returns (requests/s, latencies in ms)."""
    tickets = itertools.count()
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    gate = threading.Barrier(clients + 1)

    def worker() -> None:
        with requests.Session() as session:
            send(session)  # warm the connection
            gate.wait()
            while next(tickets) < total:
                started = time.perf_counter()
                status = send(session)
                elapsed = (time.perf_counter() - started) * 1000.0
                with lock:
                    latencies.append(elapsed)
                    if status != 201:
                        errors.append(status)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    gate.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{len(errors)} requests failed (statuses {sorted(set(errors))})")
    return len(latencies) / wall, latencies


def _counts(text: str, flag: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise SystemExit(f"{flag}: expected comma-separated whole numbers, got {text!r}") from None
    if not counts or min(counts) < 1:
        raise SystemExit(f"{flag}: expected numbers >= 1, got {text!r}")
    return counts


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far, from /proc (0.0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (a ``sfbulk serve`` supervisor and its workers)."""
    total = _proc_cpu(pid)
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return total + sum(_proc_cpu(int(child)) for child in children)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stop(proc: subprocess.Popen[str] | None) -> None:
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="1,8,32", help="comma-separated client counts (default 1,8,32)")
    parser.add_argument(
        "--workers",
        default="1",
        help="comma-separated `sfbulk serve --workers` values (e.g. 1,2,4; default 1)",
    )
    parser.add_argument("--requests", type=int, default=400, help="requests per client count and target")
    parser.add_argument(
        "--threads", type=int, default=32, help="threads per server worker (sfbulk serve --threads)"
    )
    options = parser.parse_args()
    counts = _counts(options.clients, "--clients")
    worker_counts = _counts(options.workers, "--workers")

    with tempfile.TemporaryDirectory(prefix="sfbulk-bench-server-") as tmp:
        work = Path(tmp)
        emulator, base_url = start_emulator(work)
        try:
            token = demo_token(base_url)
            seed_body = (
                "<createJob>\n   <apiVersion>34.0</apiVersion>\n"
                f"   <accessToken>{token}</accessToken>\n   <apiUrl>{base_url}</apiUrl>\n"
                "   <refreshToken>sfbulk-demo-refresh-token</refreshToken>\n"
                "   <clientId>sfbulk-demo-client-id</clientId>\n   <clientSecret>sfbulk-demo-client-secret</clientSecret>\n"
                "   <intervalTime>1000000</intervalTime>\n   <registryPath>connectors/SalesforceBulk</registryPath>\n"
                "   <operation>insert</operation>\n   <contentType>CSV</contentType>\n   <object>Contact</object>\n"
                "</createJob>"
            ).encode()
            direct_url = f"{base_url}/services/async/{API_VERSION}/job"

            def direct(session: requests.Session) -> int:
                return session.post(
                    direct_url,
                    data=JOB_INFO,
                    timeout=60,
                    headers={"X-SFDC-Session": token, "Content-Type": "application/xml; charset=UTF-8"},
                ).status_code

            print(
                f"sfbulk serve (--workers {options.workers}, {options.threads} threads each) + seed proxy vs "
                f"the emulator directly; {options.requests} createJob requests per row; {os.cpu_count()} CPUs"
            )
            header = (
                f"{'workers':>7} {'clients':>7}  {'proxy req/s':>11} {'p50 ms':>7} {'p99 ms':>7}   "
                f"{'direct req/s':>12} {'p50 ms':>7} {'p99 ms':>7}   {'throughput x':>12} {'p50 x':>6}"
            )
            print(header)
            print("-" * len(header))
            cpu_rows: list[str] = []
            measured_cpu = Path(f"/proc/{emulator.pid}/stat").exists()
            for workers in worker_counts:
                server = None
                try:
                    server, server_url = start_seed_server(work, base_url, options.threads, workers)
                    proxy_url = f"{server_url}/services/salesforcebulk_createJob"

                    def via_proxy(session: requests.Session, proxy_url: str = proxy_url) -> int:
                        return session.post(
                            proxy_url, data=seed_body, headers={"Content-Type": "text/xml"}, timeout=60
                        ).status_code

                    for clients in counts:
                        direct_rps, direct_lat = run_clients(clients, options.requests, direct)
                        before = (_self_cpu(), _tree_cpu(server.pid), _proc_cpu(emulator.pid))
                        proxy_rps, proxy_lat = run_clients(clients, options.requests, via_proxy)
                        after = (_self_cpu(), _tree_cpu(server.pid), _proc_cpu(emulator.pid))
                        sent = len(proxy_lat) + clients  # the measured requests and one warm-up each
                        client_ms, server_ms, emulator_ms = (
                            (b - a) * 1000.0 / sent for a, b in zip(before, after, strict=True)
                        )
                        total_ms = client_ms + server_ms + emulator_ms
                        cpu_rows.append(
                            f"{workers:>7} {clients:>7}  {client_ms:>7.2f} {server_ms:>7.2f} {emulator_ms:>9.2f} "
                            f"{total_ms:>7.2f}   {total_ms * proxy_rps / 1000.0:>10.2f}"
                        )
                        d50, d99 = statistics.median(direct_lat), _percentile(direct_lat, 0.99)
                        p50, p99 = statistics.median(proxy_lat), _percentile(proxy_lat, 0.99)
                        print(
                            f"{workers:>7} {clients:>7}  {proxy_rps:>11.0f} {p50:>7.1f} {p99:>7.1f}   "
                            f"{direct_rps:>12.0f} {d50:>7.1f} {d99:>7.1f}   "
                            f"{direct_rps / proxy_rps:>11.2f}x {p50 / d50:>5.2f}x",
                            flush=True,
                        )
                finally:
                    _stop(server)
            print(
                "throughput x = direct req/s / proxy req/s; p50 x = proxy p50 / direct p50 (1.00 = no overhead)"
            )
            if measured_cpu:
                print()
                print("CPU ms per proxied request (the proxy rows above), from /proc:")
                cpu_header = (
                    f"{'workers':>7} {'clients':>7}  {'client':>7} {'server':>7} {'emulator':>9} "
                    f"{'total':>7}   {'cores busy':>10}"
                )
                print(cpu_header)
                print("-" * len(cpu_header))
                for row in cpu_rows:
                    print(row)
                print(
                    "server = the supervisor and its workers; cores busy = total CPU ms x req/s "
                    f"(this machine has {os.cpu_count()})"
                )
        finally:
            _stop(emulator)


if __name__ == "__main__":
    main()
