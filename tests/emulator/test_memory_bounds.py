"""No single request takes the emulator past 500 MB of memory, however its payload is built.

The emulator runs as users run it (``sfbulk emulator`` in its own process, worker threads so that
the batch is parsed in the measured process); each hostile batch is posted, processed to its end,
and the peak resident size of the process (the kernel's high-water mark, VmHWM) is read afterwards,
so a short spike between two samples cannot hide.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from helpers import Bulk, parse  # type: ignore[import-not-found]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path("/proc/self/status").exists(), reason="reads the peak RSS (VmHWM) from /proc"
    ),
]

LIMIT_MB = 500
ROOT = Path(__file__).resolve().parents[2]


def _reset_peak(process: psutil.Process) -> None:
    """Start a new high-water mark from the current RSS (Linux: ``5`` in clear_refs)."""
    Path(f"/proc/{process.pid}/clear_refs").write_text("5")


def _peak_mb(process: psutil.Process) -> float:
    """The process's peak resident size so far, in MB (Linux VmHWM)."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM line")


@pytest.fixture  # one per case: memory freed by an earlier case is not always given back to the system
def emulator_process() -> Iterator[dict[str, Any]]:
    command = [
        sys.executable,
        "-m",
        "sfbulk",
        "emulator",
        "--port",
        "0",
        "--json",
        "--worker-threads",
        "--workers",
        "1",
    ]
    proc = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        info["process"] = psutil.Process(proc.pid)
        yield info
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _token(info: dict[str, Any]) -> str:
    import requests

    resp = requests.post(
        f"{info['base_url']}/services/oauth2/token",
        timeout=10,
        data={
            "grant_type": "refresh_token",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "refresh_token": info["refresh_token"],
        },
    )
    resp.raise_for_status()
    return str(resp.json()["access_token"])


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def _deflated_zeros(size: int) -> tuple[bytes, int]:
    """Raw deflate data of ``size`` zero bytes and its CRC-32, without deflating ``size`` bytes.

    After a full flush a deflate stream starts afresh (no history, byte-aligned), so one 1 MB block
    compressed once and written again and again inflates to the same zeros each time.
    """
    block = 1 << 20
    assert size % block == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    unit = compressor.compress(bytes(block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    zeros = bytes(16 * block)
    for _ in range(size // len(zeros)):
        crc = zlib.crc32(zeros, crc)
    return unit * (size // block) + compressor.flush(), crc


def _lying_zip() -> bytes:
    """A zip of about 1 MB that inflates to 1 GB (a zip bomb): the emulator must stop at its bound."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("request.txt", b"Name,ParentId,Body\nx,001000000000001AAA,#a.bin\n")
    head = buf.getvalue()
    # request.txt as zipfile wrote it, then a.bin written by hand (zipfile deflates what it writes,
    # and deflating 1 GB costs seconds), then the central directory of both members.
    directory = head.index(b"PK\x01\x02")
    local, central = head[:directory], head[directory : head.index(b"PK\x05\x06")]
    data, crc = _deflated_zeros(1 << 30)
    name = b"a.bin"
    # method deflate, time 00:00, date 1980-01-01, CRC, compressed and real sizes, name length
    common = (8, 0, (1 << 5) | 1, crc, len(data), 1 << 30, len(name))
    offset = len(local)
    local += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, *common, 0) + name + data
    central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, *common, 0, 0, 0, 0, 0, offset)
    central += name
    body = local + central + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(central), len(local), 0)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:  # a well-formed zip
        assert [info.file_size for info in archive.infolist()][1:] == [1 << 30]
    return body


def _many_files() -> bytes:
    members = {"request.txt": b"Name,ParentId,Body\nx,001000000000001AAA,#f0\n"}
    members.update({f"f{i}": b"" for i in range(60_000)})
    return _zip(members, zipfile.ZIP_STORED)


def _referenced_many_times() -> bytes:
    rows = "".join(f"n{i},001000000000001AAA,#big.bin\n" for i in range(5_000))
    return _zip({"request.txt": f"Name,ParentId,Body\n{rows}".encode(), "big.bin": os.urandom(4 << 20)})


CASES = {
    # name: (object, job contentType, media type, body builder, expected state)
    "zip bomb, 1 GB of zeros": ("Attachment", "ZIP_CSV", "zip/csv", _lying_zip, "Failed"),
    "zip of 60,000 files": ("Attachment", "ZIP_CSV", "zip/csv", _many_files, "Failed"),
    "one 4 MB file referenced by 5,000 rows": (
        "Attachment",
        "ZIP_CSV",
        "zip/csv",
        _referenced_many_times,
        "Failed",
    ),
    "CSV of ten million blank lines": (
        "Contact",
        "CSV",
        "text/csv",
        lambda: b"LastName\n" + b"\n" * 9_999_000,
        "Completed",
    ),  # blank lines are no records
    "CSV of five million one-letter records": (
        "Contact",
        "CSV",
        "text/csv",
        lambda: b"LastName\n" + b"x\n" * 4_999_000,
        "Failed",
    ),
    "CSV row of five million cells": (
        "Contact",
        "CSV",
        "text/csv",
        lambda: b"LastName\n" + b"ab," * 3_300_000,
        "Failed",
    ),
    "JSON array of three million empty records": (
        "Contact",
        "JSON",
        "application/json",
        lambda: b"[" + b"{}," * 3_300_000 + b"{}]",
        "Failed",
    ),
    "JSON nested a million deep": (
        "Contact",
        "JSON",
        "application/json",
        lambda: b"[" * 1_000_000 + b"]" * 1_000_000,
        "Failed",
    ),
    "XML of a million empty sObjects": (
        "Contact",
        "XML",
        "application/xml",
        lambda: b"<sObjects>" + b"<sObject/>" * 1_000_000 + b"</sObjects>",
        "Failed",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_a_hostile_batch_stays_under_500_mb(emulator_process: dict[str, Any], case: str) -> None:
    obj, content_type, media, build, expected = CASES[case]
    body = build()
    _reset_peak(emulator_process["process"])
    bulk = Bulk(emulator_process["base_url"], _token(emulator_process))
    job = bulk.create_job("insert", obj, content_type)
    resp = bulk.post(f"/job/{job}/batch", body, media)
    del body
    assert resp.status_code == 201, resp.text[:500]
    as_json = content_type.endswith("JSON")
    batch = resp.json()["id"] if as_json else parse(resp.content)["id"]
    info = bulk.wait(job, batch, timeout=120, as_json=as_json)
    assert info["state"] == expected, info
    if expected == "Failed":
        assert str(info["stateMessage"]).startswith("InvalidBatch : "), info
    peak = _peak_mb(emulator_process["process"])
    print(f"{case}: peak RSS {peak:.0f} MB")
    assert peak < LIMIT_MB, f"{case}: peak RSS {peak:.0f} MB"
