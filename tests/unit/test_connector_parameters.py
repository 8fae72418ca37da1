"""Validation catches typos in connector parameters (issue 12 point 4), in both front-ends.

A parameter the operation does not declare is an error naming the operation and the closest
declared name; ``lenient`` (``--lenient``) makes it a warning and the name is ignored, as Synapse
ignores it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from sfbulk.cli import cli
from sfbulk.config import load_paths
from sfbulk.connector.connection import Connector
from sfbulk.errors import ConfigError, ConfigErrors
from sfbulk.mediators.connector import undeclared_parameters

ROOT = Path(__file__).resolve().parents[2]

SYNAPSE = """<?xml version="1.0" encoding="UTF-8"?>
<proxy xmlns="http://ws.apache.org/ns/synapse" name="results" transports="http" startOnLoad="true">
  <target>
    <inSequence>
      <salesforcebulk.init><apiUrl>https://example.my.salesforce.com</apiUrl></salesforcebulk.init>
      <salesforcebulk.getBulkQueryResults>
        <jobId>{$ctx:jobId}</jobId>
        <batchId>{$ctx:batchId}</batchId>
        <resultsId>{$ctx:resultId}</resultsId>
      </salesforcebulk.getBulkQueryResults>
      <respond/>
    </inSequence>
  </target>
</proxy>
"""

YAML = """proxies:
  job:
    inSequence:
      - salesforcebulk.init: {apiUrl: "https://example.my.salesforce.com"}
      - salesforcebulk.getJob:
          jobid: "{$ctx:jobId}"
      - salesforcebulk.createJob:
          operation: insert
          object: Contact
          colour: red
      - respond
"""


@pytest.fixture(scope="module")
def connectors():
    connector = Connector.load()
    return {connector.name: connector}


@pytest.fixture
def configs(tmp_path):
    (tmp_path / "results.xml").write_text(SYNAPSE)
    (tmp_path / "flows.yaml").write_text(YAML)
    return tmp_path


def errors_of(exc: ConfigError) -> list[ConfigError]:
    return exc.errors if isinstance(exc, ConfigErrors) else [exc]


def test_the_closest_declared_name_is_suggested(connectors):
    connector = connectors["salesforcebulk"]
    assert undeclared_parameters(connector, "getJob", ["jobId"]) == []
    [(name, message)] = undeclared_parameters(
        connector, "getBulkQueryResults", ["jobId", "resultsId"], label="salesforcebulk.getBulkQueryResults"
    )
    assert name == "resultsId"
    assert message == (
        "salesforcebulk.getBulkQueryResults has no parameter 'resultsId'; did you mean 'resultId'? "
        "(parameters: jobId, batchId, resultId)"
    )
    [(_, message)] = undeclared_parameters(connector, "getJob", ["JOBID"])
    assert "did you mean 'jobId'?" in message  # a case slip is always recognised
    [(_, message)] = undeclared_parameters(connector, "getJob", ["colour"])
    assert "did you mean" not in message and "(parameters: jobId)" in message


def test_typos_are_errors_with_file_line_and_field_in_both_front_ends(configs, connectors):
    with pytest.raises(ConfigError) as info:
        load_paths([configs], connectors=connectors)
    found = {(Path(e.file).name, e.line, e.field): e.message for e in errors_of(info.value)}
    assert found == {
        (
            "flows.yaml",
            6,
            "proxies.job.inSequence[1].salesforcebulk.getJob.jobid",
        ): "salesforcebulk.getJob has no parameter 'jobid'; did you mean 'jobId'? (parameters: jobId)",
        (
            "flows.yaml",
            10,
            "proxies.job.inSequence[2].salesforcebulk.createJob.colour",
        ): "salesforcebulk.createJob has no parameter 'colour' (parameters: operation, object, contentType, "
        "externalIdFieldName, concurrencyMode, assignmentRuleId, pkChunking)",
        (
            "results.xml",
            9,
            "salesforcebulk.getBulkQueryResults/resultsId",
        ): "salesforcebulk.getBulkQueryResults has no parameter 'resultsId'; did you mean 'resultId'? "
        "(parameters: jobId, batchId, resultId)",
    }


def test_lenient_turns_them_into_warnings(configs, connectors):
    loaded = load_paths([configs], connectors=connectors, lenient=True)
    assert set(loaded.proxies) == {"job", "results"}
    typos = [w for w in loaded.warnings if "has no parameter" in w]
    assert len(typos) == 3 and all(w.endswith("; ignored (--lenient)") for w in typos)
    assert any("results.xml:9:" in w and "did you mean 'resultId'?" in w for w in typos)


def test_init_parameters_are_checked_too(tmp_path, connectors):
    (tmp_path / "init.yaml").write_text(
        'proxies:\n  p:\n    inSequence:\n      - salesforcebulk.init: {apiUrl: "https://x", acessToken: "{$ctx:t}"}\n'
        "      - respond\n"
    )
    with pytest.raises(
        ConfigError, match="salesforcebulk.init has no parameter 'acessToken'; did you mean 'accessToken'"
    ):
        load_paths([tmp_path], connectors=connectors)


def test_validate_command_fails_and_passes_with_lenient(configs):
    runner = CliRunner()
    strict = runner.invoke(cli, ["validate", str(configs)], catch_exceptions=False)
    assert strict.exit_code == 1
    assert (
        f"error: {configs / 'results.xml'}:9: " in strict.stderr
        and "did you mean 'resultId'?" in strict.stderr
    )
    assert "3 error(s) found" in strict.stderr
    lenient = runner.invoke(cli, ["validate", "--lenient", str(configs)], catch_exceptions=False)
    assert lenient.exit_code == 0, lenient.output
    assert lenient.stdout.strip() == "OK: 2 proxies, 0 sequences"
    assert lenient.stderr.count("ignored (--lenient)") == 3


def test_run_refuses_a_typo_before_anything_is_sent(configs, tmp_path):
    result = CliRunner().invoke(
        cli,
        ["run", str(configs / "results.xml"), "--proxy", "results", "--registry", str(tmp_path / "reg")],
        catch_exceptions=False,
    )
    assert result.exit_code == 2
    assert "did you mean 'resultId'?" in result.stderr


@pytest.mark.parametrize("folder", ["examples", "examples/synapse", "examples/bulk"])
def test_every_shipped_example_still_validates_strictly(folder):
    result = CliRunner().invoke(cli, ["validate", str(ROOT / folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "has no parameter" not in result.stderr
