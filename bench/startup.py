"""CLI start-up: how long sfbulk takes before it does any work (docs/benchmarks.md, "CLI start-up").

Each figure is the median of ``--runs`` fresh interpreters, as wall time and as CPU time (user +
system of the child process, which a busy machine inflates much less than wall time):

* ``sfbulk --help`` and ``sfbulk validate examples/flows.yaml``;
* loading the connector bundle (``Connector.load()``) with a cold start-up cache (an empty cache
  directory each run), a warm one, and no cache (``SFBULK_CACHE_DIR=``);
* ``sfbulk extract`` up to its first HTTP request (``createJob``), sent to a loopback stub that
  answers 400 ``InvalidJob`` and records when the request arrived.

``--parts`` instead prints, in-process, what each start-up shortcut of bundle loading saves: YAML
by libyaml vs PyYAML's pure-Python loader, jsonschema's import and the schema checks, and a
bundle load with a warm start-up cache vs without one.

Run from the repo root: ``.venv/bin/python bench/startup.py --runs 9``. ``--against DIR`` measures
another checkout too (e.g. ``mkdir -p /tmp/before && git archive <commit> | tar -x -C /tmp/before``), run for run in turns with
this one so that a busy machine slows both alike; the interpreter is this one's for both.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SFBULK = [sys.executable, "-m", "sfbulk"]
LOAD_BUNDLE = [sys.executable, "-c", "from sfbulk.connector.connection import Connector; Connector.load()"]
INVALID_JOB = (
    b'<?xml version="1.0" encoding="UTF-8"?><error xmlns="http://www.force.com/2009/06/asyncapi/dataload">'
    b"<exceptionCode>InvalidJob</exceptionCode><exceptionMessage>stub</exceptionMessage></error>"
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str], tree: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``command`` in checkout ``tree``."""
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(
        command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return time.perf_counter() - start, _children_cpu() - cpu


class _Stub(BaseHTTPRequestHandler):
    arrived: list[float] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        _Stub.arrived.append(time.perf_counter())
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(400)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(INVALID_JOB)))
        self.end_headers()
        self.wfile.write(INVALID_JOB)

    def log_message(self, *args: object) -> None:
        pass


def first_request(env: dict[str, str], url: str, out: Path, tree: Path) -> tuple[float, float]:
    """Seconds from starting ``sfbulk extract`` to its createJob arriving at the stub, and the CPU to exit."""
    _Stub.arrived.clear()
    command = [
        *SFBULK,
        "extract",
        "SELECT Id FROM Account",
        "--api-url",
        url,
        "--access-token",
        "stub",
        "--out",
        str(out),
        "--restart",
    ]
    cpu = _children_cpu()
    start = time.perf_counter()
    subprocess.run(
        command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    return ((_Stub.arrived[0] - start) if _Stub.arrived else float("nan")), _children_cpu() - cpu


def measure(tree: Path, scratch: str, run: int, url: str) -> dict[str, tuple[float, float]]:
    """One sample of every figure for checkout ``tree`` (its warm cache is ``scratch``/warm-<tree>)."""
    warm = {**os.environ, "SFBULK_CACHE_DIR": os.path.join(scratch, f"warm-{tree.name}")}
    cold = {**warm, "SFBULK_CACHE_DIR": os.path.join(scratch, f"cold-{tree.name}-{run}")}
    none = {**warm, "SFBULK_CACHE_DIR": ""}
    if run == 0:
        subprocess.run(LOAD_BUNDLE, cwd=tree, env=warm, check=True)  # fill the warm cache
    return {
        "sfbulk --help": timed([*SFBULK, "--help"], warm, tree),
        "sfbulk validate examples/flows.yaml": timed(
            [*SFBULK, "validate", "examples/flows.yaml"], warm, tree
        ),
        "Connector.load(), cold cache": timed(LOAD_BUNDLE, cold, tree),
        "Connector.load(), warm cache": timed(LOAD_BUNDLE, warm, tree),
        "Connector.load(), no cache": timed(LOAD_BUNDLE, none, tree),
        "sfbulk extract to its first request (warm)": first_request(
            warm, url, Path(scratch, "out.csv"), tree
        ),
    }


def _best(action: Callable[[], object], runs: int = 5) -> float:
    """The least CPU seconds ``action`` took in ``runs`` calls."""
    spent = []
    for _ in range(runs):
        start = time.process_time()
        action()
        spent.append(time.process_time() - start)
    return min(spent)


def parts() -> None:
    """What each shortcut of bundle loading saves, measured in this process."""
    from sfbulk import yamlfile
    from sfbulk.connector.connection import bundle_root

    root = bundle_root()
    texts = [
        (path.read_text(encoding="utf-8"), str(path))
        for path in [root / "connector.yaml", *sorted((root / "operations").glob("*.yaml"))]
    ]
    print(f"the bundle's {len(texts)} YAML files, CPU ms (best of 5):")
    pure = _best(lambda: [yamlfile.parse_yaml(text, name, fast=False) for text, name in texts])
    fast = _best(lambda: [yamlfile.parse_yaml(text, name) for text, name in texts])
    print(f"  parsed by PyYAML's pure-Python loader  {1000 * pure:6.1f}")
    print(f"  parsed by libyaml                      {1000 * fast:6.1f}")
    start = time.process_time()
    import jsonschema  # noqa: F401 - its import time is the figure

    print(f"  import jsonschema                      {1000 * (time.process_time() - start):6.1f}")
    from sfbulk.connector.bundle import loader, schema

    documents = [
        (
            schema.CONNECTOR_SCHEMA if name.endswith("connector.yaml") else schema.OPERATION_SCHEMA,
            yamlfile.parse_yaml(text, name),
        )
        for text, name in texts
    ]
    checks = _best(lambda: [schema.validate(document, rules, "bench") for rules, document in documents])
    print(f"  JSON Schema checks                     {1000 * checks:6.1f}")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ["SFBULK_CACHE_DIR"] = scratch
        loader.load_bundle(root)
        warm = _best(lambda: loader.load_bundle(root))
    os.environ["SFBULK_CACHE_DIR"] = ""
    uncached = _best(lambda: loader.load_bundle(root))
    print(f"  load_bundle, warm start-up cache       {1000 * warm:6.1f}")
    print(f"  load_bundle, no cache (imports done)   {1000 * uncached:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--against", type=Path, help="another checkout to measure in turns with this one")
    parser.add_argument("--parts", action="store_true", help="what each shortcut of bundle loading saves")
    args = parser.parse_args()
    if args.parts:
        parts()
        return
    trees = [ROOT] + ([args.against.resolve()] if args.against else [])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    results: dict[Path, dict[str, list[tuple[float, float]]]] = {tree: {} for tree in trees}
    with tempfile.TemporaryDirectory() as scratch:
        for run in range(args.runs):
            for tree in trees if run % 2 == 0 else trees[::-1]:
                for name, value in measure(tree, scratch, run, url).items():
                    results[tree].setdefault(name, []).append(value)
    server.shutdown()
    for tree, figures in results.items():
        width = max(map(len, figures))
        print(f"{tree}: wall and CPU, medians of {args.runs} runs (CPU min-max)")
        for name, values in figures.items():
            walls, cpus = [v[0] for v in values], [v[1] for v in values]
            print(
                f"  {name:<{width}}  {statistics.median(walls):6.3f}s  {statistics.median(cpus):6.3f}s"
                f"   ({min(cpus):.3f}-{max(cpus):.3f})"
            )


if __name__ == "__main__":
    main()
