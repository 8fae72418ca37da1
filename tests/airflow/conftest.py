"""Tests of the Airflow provider with a real Airflow 3 (``make test-airflow``: its own venv).

Without Airflow (the main suite's venv) this folder is not collected, and the run says why.
With it: each pytest process gets its own AIRFLOW_HOME (set before Airflow is imported) with a
SQLite metadata DB made once by ``airflow db migrate``, and a DAG folder holding the example DAGs
of examples/airflow/ (the files docs/airflow.md shows) plus the test DAGs of tests/airflow/dags/.
"""

from __future__ import annotations

import atexit
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "airflow"


def _have_airflow() -> bool:
    """Whether Apache Airflow is installed (not find_spec("airflow"): with tests/ on sys.path this
    very folder would pass for a namespace package of that name)."""
    try:
        importlib.metadata.version("apache-airflow-core")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


HAVE_AIRFLOW = _have_airflow()
SKIP_REASON = (
    "tests/airflow not run: Apache Airflow is not installed in this venv (`make test-airflow` runs them)"
)

if not HAVE_AIRFLOW:
    collect_ignore_glob = ["*.py"]
else:
    # Before anything imports airflow: it reads its configuration once, at import.
    _HOME = tempfile.mkdtemp(prefix="sfbulk-airflow-home-")
    atexit.register(shutil.rmtree, _HOME, True)
    _DAGS = os.path.join(_HOME, "dags")
    os.makedirs(_DAGS)
    for source in [*EXAMPLES.glob("*.py"), *(Path(__file__).parent / "dags").glob("*.py")]:
        os.symlink(source, os.path.join(_DAGS, source.name))
    sys.path.insert(0, _DAGS)  # the tests import the example DAG modules by name
    os.environ.update(
        {
            "AIRFLOW_HOME": _HOME,
            "AIRFLOW__CORE__DAGS_FOLDER": _DAGS,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME}/airflow.db",
        }
    )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not HAVE_AIRFLOW:
        terminalreporter.write_line(SKIP_REASON)


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """The metadata DB of this process's AIRFLOW_HOME, migrated once (about 7 s on an idle machine)."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    started = time.monotonic()
    result = subprocess.run(
        [airflow, "db", "migrate"], capture_output=True, text=True, timeout=600, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    sys.stderr.write(f"\nairflow db migrate: {time.monotonic() - started:.1f} s\n")
    return os.environ["AIRFLOW_HOME"]


def connection_json(emu: Any, registry: Path, **extra: Any) -> str:
    """The ``sfbulk`` connection to ``emu`` in Airflow's JSON form (refresh-token flow)."""
    creds = emu.credentials
    return json.dumps(
        {
            "conn_type": "sfbulk",
            "host": emu.base_url,
            "login": creds["client_id"],
            "password": creds["client_secret"],
            "extra": {
                "refresh_token": creds["refresh_token"],
                "token_endpoint": emu.base_url,
                "registry": str(registry),
                **extra,
            },
        }
    )


@pytest.fixture
def sfbulk_conn(emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``AIRFLOW_CONN_SFBULK_DEFAULT`` pointing at the session's emulator; yields the JSON."""
    value = connection_json(emulator, tmp_path / "registry")
    monkeypatch.setenv("AIRFLOW_CONN_SFBULK_DEFAULT", value)
    yield value
