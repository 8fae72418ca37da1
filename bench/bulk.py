"""Bulk load + extract: sfbulk vs salesforce-bulk 2.2.0 vs simple-salesforce (Bulk 1.0), one command;
with ``--api 2``: sfbulk's Bulk API 2.0 pipeline vs simple-salesforce's ``bulk2``.

For each client: a fresh emulator (a separate process, HTTPS with its test CA, same settings for
everyone), then the client inserts an N-row Contact CSV and extracts it back, each phase in its own
subprocess. The parent measures wall time, and takes CPU time (user + system) and peak RSS from
the child's rusage (``os.wait4``). Row counts are checked after every phase.

    .venv/bin/python bench/bulk.py                      # 200,000 rows, all three clients
    .venv/bin/python bench/bulk.py --rows 100000 --clients sfbulk
    .venv/bin/python bench/bulk.py --memory 100000,1000000   # sfbulk peak RSS at several sizes
    .venv/bin/python bench/bulk.py --journal-cost 3          # time spent journaling, 3 sfbulk loads
    .venv/bin/python bench/bulk.py --api 2                   # Bulk API 2.0: sfbulk vs simple-salesforce bulk2
    .venv/bin/python bench/bulk.py --api 2 --rows 2000000 --max-job-bytes 40000000   # several jobs

With ``--api 2`` both clients load through Bulk API 2.0 and learn every row's outcome: sfbulk writes
its success/error files in input order; simple-salesforce's ``insert(csv_file=..., concurrency=4)``
is followed by ``get_successful_records``/``get_failed_records`` of each job to files (without them
a caller knows only counts). ``--max-job-bytes`` splits sfbulk's load into jobs of that size, and
simple-salesforce's into jobs of as many rows (its ``batch_size``). Extract: sfbulk's parallel
``resultPages`` download vs ``bulk2.Contact.download(...)`` (pages one after the other, to files),
joined into one CSV as sfbulk writes it.

Peers run as their docs show, with changes in their favour: status polling every 0.2 s instead of
their defaults (salesforce-bulk ``wait_for_batch`` 10 s, simple-salesforce 5 s), so the comparison
measures the clients, not their sleep settings (``--peer-poll default`` shows what they do out of
the box); salesforce-bulk gets each batch as one bytes body
(its README's per-record iterator is several times slower) and the file pre-split at 10,000 rows,
which it leaves to the caller.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SOQL = "SELECT Id, FirstName, LastName, Email, Description FROM Contact"
POLL = float(os.environ.get("BENCH_PEER_POLL", "0.2"))  # seconds; "0" means each peer's own default
DEFAULT_POLL = {
    "salesforce-bulk": 10.0,
    "simple-salesforce": 5.0,
    "simple-salesforce-bulk2": 5.0,
}  # wait_for_batch / insert(), query()
CLIENTS = ("sfbulk", "salesforce-bulk", "simple-salesforce")
CLIENTS_V2 = ("sfbulk", "simple-salesforce-bulk2")


# --------------------------------------------------------------------------------------------
# children: one phase of one client; connection details come in through the environment


def _child(client: str, phase: str, csv_path: str, out_path: str) -> None:
    global POLL
    POLL = POLL or DEFAULT_POLL.get(client, 0.2)
    base_url = os.environ["BENCH_BASE_URL"]
    token = os.environ["BENCH_TOKEN"]
    host = base_url.split("://", 1)[1]
    if client == "salesforce-bulk":
        from salesforce_bulk import SalesforceBulk

        bulk = SalesforceBulk(sessionId=token, host=base_url, API_version="62.0")
        if phase == "load":
            job = bulk.create_insert_job("Contact", contentType="CSV")
            batches = []
            with open(csv_path, "rb") as fh:
                header = fh.readline()
                lines: list[bytes] = []
                for line in fh:  # the file has no embedded newlines; salesforce-bulk leaves splitting to you
                    lines.append(line)
                    if len(lines) == 10_000:  # one bytes body per batch: far faster than a line iterator
                        batches.append(bulk.post_batch(job, b"".join([header, *lines])))
                        lines = []
                if lines:
                    batches.append(bulk.post_batch(job, b"".join([header, *lines])))
            ok = 0
            for batch in batches:
                bulk.wait_for_batch(job, batch, timeout=3600, sleep_interval=POLL)
                ok += sum(1 for r in bulk.get_batch_results(batch, job) if r.success == "true")
            bulk.close_job(job)
            print(json.dumps({"ok": ok}))
        else:
            job = bulk.create_query_job("Contact", contentType="CSV")
            batch = bulk.query(job, SOQL)
            bulk.close_job(job)
            while not bulk.is_batch_done(batch, job):
                time.sleep(POLL)
            rows = 0
            with open(out_path, "wb") as out:
                for n, result in enumerate(bulk.get_all_results_for_query_batch(batch, job)):
                    data = result.read()
                    if n:
                        data = data.split(b"\n", 1)[1]
                    rows += data.count(b"\n")
                    out.write(data)
            print(json.dumps({"ok": rows - 1}))
    elif client == "simple-salesforce":
        from simple_salesforce import Salesforce

        sf = Salesforce(instance=host, session_id=token, version="62.0")
        handler = sf.bulk.Contact
        if phase == "load":
            with open(csv_path, encoding="utf-8", newline="") as fh:
                records = list(csv.DictReader(fh))
            # insert() polls every 5 s and does not expose it; same call path with a 0.2 s poll:
            results = handler._bulk_operation(operation="insert", data=records, batch_size=10_000, wait=POLL)
            print(json.dumps({"ok": sum(1 for r in results if r["success"])}))
        else:
            rows = 0
            fields = ["Id", "FirstName", "LastName", "Email", "Description"]
            with open(out_path, "w", encoding="utf-8", newline="") as out:
                writer = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
                writer.writeheader()
                for chunk in handler.query(SOQL, lazy_operation=True, wait=POLL):
                    for record in chunk:
                        writer.writerow(record)
                        rows += 1
            print(json.dumps({"ok": rows}))
    elif client == "simple-salesforce-bulk2":
        import shutil

        from simple_salesforce import Salesforce

        sf = Salesforce(instance=host, session_id=token, version="62.0")
        handler = sf.bulk2.Contact
        work = tempfile.mkdtemp(prefix="ss-bulk2-", dir=os.path.dirname(out_path))
        try:
            if phase == "load":
                batch = int(os.environ.get("BENCH_SS_BATCH", "0")) or None
                jobs = handler.insert(csv_file=csv_path, batch_size=batch, concurrency=4, wait=POLL)
                ok = 0
                for n, job in enumerate(jobs):  # every row's outcome, as sfbulk writes it
                    good = os.path.join(work, f"ok-{n}.csv")
                    handler.get_successful_records(job["job_id"], file=good)
                    handler.get_failed_records(job["job_id"], file=os.path.join(work, f"err-{n}.csv"))
                    with open(good, "rb") as fh:
                        ok += sum(1 for _ in fh) - 1
                print(json.dumps({"ok": ok, "jobs": len(jobs)}))
            else:
                pages = handler.download(SOQL, path=work, wait=POLL)
                with open(out_path, "wb") as out:
                    for n, page in enumerate(pages):
                        with open(page["file"], "rb") as fh:
                            if n:
                                fh.readline()
                            shutil.copyfileobj(fh, out, 1 << 20)
                print(json.dumps({"ok": sum(p["number_of_records"] for p in pages)}))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    else:
        raise SystemExit(f"unknown client {client}")


def _journal_child(csv_path: str, out_dir: str) -> None:
    """One in-process ``load_csv`` with the time spent in each journal step summed (``--journal-cost``).

    The steps are wrapped with a timer, nothing else changes: the journal appends (write + fsync),
    the input fingerprint, the result files' flush + fsync at each merge checkpoint, opening and
    deleting the journal. The sum is over threads, so it is an upper bound of what the journal
    adds to the wall time (uploads overlap it).
    """
    import threading

    from sfbulk.bulk import journal as jmod
    from sfbulk.bulk import load as lmod
    from sfbulk.bulk import results as rmod
    from sfbulk.connector.connection import Connector
    from sfbulk.registry import FileRegistry

    spent: dict[str, float] = {}
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    spent[name] = spent.get(name, 0.0) + time.perf_counter() - started
                    calls[name] = calls.get(name, 0) + 1

        return wrapper

    jmod.Journal.append = timed("journal records (write + fsync)", jmod.Journal.append)  # type: ignore[method-assign]
    jmod.Journal.finish = timed("journal delete", jmod.Journal.finish)  # type: ignore[method-assign]
    rmod.ResultWriter.sync = timed("result files flush + fsync", rmod.ResultWriter.sync)  # type: ignore[method-assign]
    lmod.fingerprint = timed("input SHA-256", lmod.fingerprint)
    lmod.open_journal = timed("journal open + lock", lmod.open_journal)
    conn = Connector.load().connection(
        registry=FileRegistry(os.path.join(out_dir, "registry")),
        apiUrl=os.environ["BENCH_BASE_URL"],
        accessToken=os.environ["BENCH_TOKEN"],
        caFile=os.environ["REQUESTS_CA_BUNDLE"],
    )
    started = time.perf_counter()
    summary = lmod.load_csv(
        conn,
        csv_path,
        lmod.LoadOptions(
            object="Contact",
            success_path=os.path.join(out_dir, "ok.csv"),
            error_path=os.path.join(out_dir, "err.csv"),
        ),
    )
    wall = time.perf_counter() - started
    conn.close()
    print(json.dumps({"wall": wall, "ok": summary.succeeded, "spent": spent, "calls": calls}))


def journal_cost(csv_path: Path, rows: int, work: Path, runs: int) -> None:
    print(
        f"{'run':>4} {'load wall':>10} {'journal':>9} {'share':>7}   (journal = time in its steps, summed over threads)"
    )
    totals: dict[str, float] = {}
    for n in range(1, runs + 1):
        emu = Emulator()
        try:
            env = dict(
                os.environ,
                BENCH_BASE_URL=emu.info["base_url"],
                BENCH_TOKEN=emu.token,
                REQUESTS_CA_BUNDLE=emu.info["ca_file"],
                PYTHONPATH=str(ROOT),
            )
            _, _, _, text = run_measured([PY, __file__, "_journal", str(csv_path), str(work)], env)
        finally:
            emu.stop()
        result = json.loads(text.strip().splitlines()[-1])
        if result["ok"] != rows:
            raise RuntimeError(f"{result['ok']} rows loaded, expected {rows}")
        journal = sum(result["spent"].values())
        for name, seconds in result["spent"].items():
            totals[name] = totals.get(name, 0.0) + seconds
        print(f"{n:>4} {result['wall']:>9.2f}s {journal:>8.3f}s {journal / result['wall']:>6.1%}", flush=True)
    print("\nper step, mean of the runs:")
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<34} {seconds / runs * 1000:8.1f} ms")


# --------------------------------------------------------------------------------------------
# parent


class Emulator:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [PY, "-m", "sfbulk", "emulator", "--port", "0", "--json", "--tls"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.info = json.loads(self.proc.stdout.readline())
        import requests

        resp = requests.post(
            self.info["base_url"] + "/services/oauth2/token",
            timeout=30,
            verify=self.info["ca_file"],
            data={
                "grant_type": "refresh_token",
                "client_id": self.info["client_id"],
                "client_secret": self.info["client_secret"],
                "refresh_token": self.info["refresh_token"],
            },
        )
        resp.raise_for_status()
        self.token = resp.json()["access_token"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def run_measured(argv: list[str], env: dict[str, str]) -> tuple[float, float, float, str]:
    """(wall s, cpu s, peak RSS MB, stdout) of one child process."""
    out = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    out.seek(0)
    text = out.read().decode(errors="replace")
    if proc.returncode not in (0,):
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}:\n{err[-3000:]}\n{text[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0, text


def count_rows(path: Path) -> int:
    with path.open(encoding="utf-8", newline="") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def make_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["FirstName", "LastName", "Email", "Description"])
        for i in range(rows):
            w.writerow([f"First{i}", f"Last{i}", f"user{i}@example.com", f"Bench row {i}, café"])


def bench_client(
    client: str, csv_path: Path, rows: int, work: Path, *, api: int = 1, max_job_bytes: int = 0
) -> dict[str, Any]:
    emu = Emulator()
    try:
        env = dict(
            os.environ,
            BENCH_BASE_URL=emu.info["base_url"],
            BENCH_TOKEN=emu.token,
            REQUESTS_CA_BUNDLE=emu.info["ca_file"],
            PYTHONPATH=str(ROOT),
        )
        if (
            max_job_bytes
        ):  # simple-salesforce bulk2 splits by rows: as many rows per job as sfbulk's bytes hold
            env["BENCH_SS_BATCH"] = str(max(1, rows * max_job_bytes // csv_path.stat().st_size))
        out = work / f"{client}-extract.csv"
        if client == "sfbulk":
            common = ["--api-url", emu.info["base_url"], "--ca-file", emu.info["ca_file"], "--no-progress"]
            env["SFBULK_ACCESS_TOKEN"] = emu.token
            v2 = ["--api", "2"] if api == 2 else []
            jobs = ["--max-job-bytes", str(max_job_bytes)] if api == 2 and max_job_bytes else []
            load = [
                PY,
                "-m",
                "sfbulk",
                "load",
                str(csv_path),
                "--object",
                "Contact",
                "--success",
                str(work / "ok.csv"),
                "--errors",
                str(work / "err.csv"),
                *v2,
                *jobs,
                *common,
            ]
            extract = [PY, "-m", "sfbulk", "extract", SOQL, "--out", str(out), *v2, *common]
        else:
            load = [PY, __file__, "_child", client, "load", str(csv_path), str(out)]
            extract = [PY, __file__, "_child", client, "extract", str(csv_path), str(out)]
        result: dict[str, Any] = {"client": client}
        wall, cpu, rss, text = run_measured(load, env)
        loaded = (
            count_rows(work / "ok.csv")
            if client == "sfbulk"
            else json.loads(text.strip().splitlines()[-1])["ok"]
        )
        if loaded != rows:
            raise RuntimeError(f"{client}: {loaded} rows loaded, expected {rows}")
        result["load"] = (wall, cpu, rss)
        wall, cpu, rss, _ = run_measured(extract, env)
        extracted = count_rows(out)
        if extracted != rows:
            raise RuntimeError(f"{client}: {extracted} rows extracted, expected {rows}")
        result["extract"] = (wall, cpu, rss)
        out.unlink()
        return result
    finally:
        emu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--clients", default="", help="comma-separated (default: every client of the --api)")
    parser.add_argument("--api", type=int, choices=(1, 2), default=1, help="Bulk API version to compare")
    parser.add_argument(
        "--max-job-bytes",
        type=int,
        default=0,
        help="--api 2: CSV bytes per sfbulk job (and as many rows per simple-salesforce job)",
    )
    parser.add_argument(
        "--memory", default="", help="comma-separated row counts: sfbulk only, peak RSS per size"
    )
    parser.add_argument(
        "--journal-cost",
        type=int,
        default=0,
        metavar="RUNS",
        help="sfbulk only: RUNS in-process loads, timing the journal's steps against the load's wall",
    )
    parser.add_argument(
        "--peer-poll",
        default="0.2",
        help="peers' status polling interval in seconds, or 'default' for their own "
        "(salesforce-bulk 10 s, simple-salesforce 5 s)",
    )
    args = parser.parse_args()
    args.clients = args.clients or ",".join(CLIENTS_V2 if args.api == 2 else CLIENTS)
    modes = {"api": args.api, "max_job_bytes": args.max_job_bytes}
    os.environ["BENCH_PEER_POLL"] = "0" if args.peer_poll == "default" else str(float(args.peer_poll))
    with tempfile.TemporaryDirectory(prefix="sfbulk-bench-") as tmp:
        work = Path(tmp)
        if args.journal_cost:
            src = work / "in.csv"
            make_csv(src, args.rows)
            print(
                f"{args.rows:,} Contact rows ({src.stat().st_size / 1e6:.1f} MB CSV), sfbulk load in-process, "
                "emulator over HTTPS\n"
            )
            journal_cost(src, args.rows, work, args.journal_cost)
            return
        if args.memory:
            print(f"{'rows':>10} {'load wall':>10} {'load RSS':>9} {'extract wall':>13} {'extract RSS':>12}")
            for n in [int(x) for x in args.memory.split(",")]:
                src = work / f"in-{n}.csv"
                make_csv(src, n)
                r = bench_client("sfbulk", src, n, work, **modes)
                print(
                    f"{n:>10,} {r['load'][0]:>9.1f}s {r['load'][2]:>7.0f}MB {r['extract'][0]:>12.1f}s "
                    f"{r['extract'][2]:>10.0f}MB",
                    flush=True,
                )
                src.unlink()
            return
        src = work / "in.csv"
        make_csv(src, args.rows)
        poll = "their own defaults" if args.peer_poll == "default" else f"every {float(args.peer_poll):g} s"
        jobs = f", jobs of {args.max_job_bytes:,} bytes" if args.max_job_bytes else ""
        print(
            f"{args.rows:,} Contact rows ({src.stat().st_size / 1e6:.1f} MB CSV); Bulk API {args.api}.0{jobs}; "
            f"emulator over HTTPS, one fresh emulator process per client; peers poll {poll}; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
        )
        results = []
        for client in args.clients.split(","):
            r = bench_client(client, src, args.rows, work, **modes)
            results.append(r)
            print(
                f"{client:<18} load    wall {r['load'][0]:7.2f} s  cpu {r['load'][1]:7.2f} s  "
                f"peak RSS {r['load'][2]:7.1f} MB",
                flush=True,
            )
            print(
                f"{'':<18} extract wall {r['extract'][0]:7.2f} s  cpu {r['extract'][1]:7.2f} s  "
                f"peak RSS {r['extract'][2]:7.1f} MB",
                flush=True,
            )
        ours = next((r for r in results if r["client"] == "sfbulk"), None)
        peers = [r for r in results if r["client"] != "sfbulk"]
        if ours and peers:
            print()
            for phase in ("load", "extract"):
                best = min(peers, key=lambda r: r[phase][0])
                print(
                    f"{phase:<8} sfbulk / fastest peer ({best['client']}): wall "
                    f"{ours[phase][0] / best[phase][0]:.2f}x, cpu {ours[phase][1] / best[phase][1]:.2f}x, "
                    f"peak RSS {ours[phase][2] / best[phase][2]:.2f}x"
                )
            total = {r["client"]: r["load"][0] + r["extract"][0] for r in results}
            best_peer = min((c for c in total if c != "sfbulk"), key=total.get)  # type: ignore[arg-type]
            print(
                f"load+extract wall: sfbulk {total['sfbulk']:.2f} s vs {best_peer} {total[best_peer]:.2f} s "
                f"= {total['sfbulk'] / total[best_peer]:.2f}x (target <= 0.5x)"
            )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _child(*sys.argv[2:6])
    elif len(sys.argv) > 1 and sys.argv[1] == "_journal":
        _journal_child(*sys.argv[2:4])
    else:
        main()
