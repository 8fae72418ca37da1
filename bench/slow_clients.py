"""Slow clients vs `sfbulk serve`: `python bench/slow_clients.py [--seconds 30] [--connections 200]`.

Three processes: the emulator, `sfbulk serve` (seed proxy, default limits) and this one, which opens
N connections trickling headers and N trickling bodies (one byte per connection every 0.5 s; a
connection cut by a deadline is reopened at once, as a persistent attacker would), and meanwhile
probes `GET /health` and the seed proxy's createJob every 0.5 s. Printed: probes answered, worst
and median latency of each, and how many trickling connections the server cut (and the attacker
reopened). The acceptance bar (docs/server.md): every probe answers within 2 s.
"""

from __future__ import annotations

import argparse
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server import demo_token, start_emulator, start_seed_server  # noqa: E402  (bench/server.py)


class Tricklers:
    """``count`` connections, each sending ``prefix`` then one byte of ``drip`` per ``tick()``."""

    def __init__(self, address: tuple[str, int], count: int, prefix: bytes, drip: bytes) -> None:
        self.address, self.prefix, self.drip = address, prefix, drip
        self.socks = [self._open() for _ in range(count)]
        self.offsets = [0] * count
        self.reopened = 0

    def _open(self) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=5)
        sock.sendall(self.prefix)
        sock.setblocking(False)
        return sock

    def tick(self) -> None:
        for i, sock in enumerate(self.socks):
            try:
                sock.send(self.drip[self.offsets[i] % len(self.drip) :][:1])
                self.offsets[i] += 1
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                sock.close()
                self.socks[i] = self._open()
                self.offsets[i] = 0
                self.reopened += 1

    def close(self) -> None:
        for sock in self.socks:
            sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the slow clients trickle")
    parser.add_argument(
        "--connections", type=int, default=200, help="header tricklers, and as many body tricklers"
    )
    parser.add_argument(
        "--threads", type=int, default=32, help="server worker threads (sfbulk serve --threads)"
    )
    options = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4 * options.connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(
            resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard), hard)
        )

    with tempfile.TemporaryDirectory(prefix="sfbulk-bench-slow-") as tmp:
        work = Path(tmp)
        emulator, base_url = start_emulator(work)
        server = None
        try:
            server, server_url = start_seed_server(work, base_url, options.threads)
            token = demo_token(base_url)
            seed_body = (
                "<createJob><apiVersion>34.0</apiVersion>"
                f"<accessToken>{token}</accessToken><apiUrl>{base_url}</apiUrl>"
                "<refreshToken>sfbulk-demo-refresh-token</refreshToken><clientId>sfbulk-demo-client-id</clientId>"
                "<clientSecret>sfbulk-demo-client-secret</clientSecret><intervalTime>1000000</intervalTime>"
                "<registryPath>connectors/SalesforceBulk</registryPath><operation>insert</operation>"
                "<contentType>CSV</contentType><object>Contact</object></createJob>"
            ).encode()
            host, _, port = server_url.removeprefix("http://").rpartition(":")
            address = (host, int(port))
            target = b"POST /services/salesforcebulk_createJob HTTP/1.1\r\nHost: x\r\n"
            headers = Tricklers(address, options.connections, target, b"X-Slow: " + b"a" * 4000 + b"\r\n")
            bodies = Tricklers(
                address,
                options.connections,
                target + b"Content-Type: text/xml\r\nContent-Length: 1000000\r\n\r\n<a>",
                b"x" * 100000,
            )
            health_s: list[float] = []
            seed_s: list[float] = []
            failures: list[str] = []
            try:
                ends = time.monotonic() + options.seconds
                while time.monotonic() < ends:
                    headers.tick()
                    bodies.tick()
                    for url, kwargs, sink, expected in (
                        (server_url + "/health", {}, health_s, 200),
                        (
                            server_url + "/services/salesforcebulk_createJob",
                            {"data": seed_body, "headers": {"Content-Type": "text/xml"}},
                            seed_s,
                            201,
                        ),
                    ):
                        started = time.monotonic()
                        try:
                            status = requests.request(
                                "POST" if "data" in kwargs else "GET", url, timeout=10, **kwargs
                            ).status_code  # type: ignore[arg-type]
                        except requests.RequestException as exc:
                            failures.append(f"{url}: {type(exc).__name__}")
                            continue
                        sink.append(time.monotonic() - started)
                        if status != expected:
                            failures.append(f"{url}: HTTP {status}")
                    time.sleep(0.5)
            finally:
                headers.close()
                bodies.close()
            print(
                f"{options.connections} header + {options.connections} body tricklers for {options.seconds:g} s, "
                f"sfbulk serve --threads {options.threads} (default limits)"
            )
            for name, values in (("/health", health_s), ("seed createJob", seed_s)):
                print(
                    f"  {name:<15} {len(values):>4} answered   worst {max(values):.3f} s   "
                    f"median {statistics.median(values):.3f} s"
                )
            print(
                f"  trickling connections cut by a deadline and reopened: headers {headers.reopened}, "
                f"bodies {bodies.reopened}"
            )
            print(f"  failed probes: {len(failures)}" + (f" ({failures[:3]})" if failures else ""))
            if failures or max(health_s + seed_s) >= 2.0:
                raise SystemExit(1)
        finally:
            for proc in (server, emulator):
                if proc is not None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=30)
                    except Exception:
                        proc.kill()


if __name__ == "__main__":
    main()
