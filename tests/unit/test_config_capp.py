"""WSO2 Carbon Applications (.car): the example deployment's artifacts packed as Integration Studio
packs them load the same; unknown connectors, broken members and oversized members are errors."""

from __future__ import annotations

import pytest
from fixtures.capp import DEFAULT, descriptor, make_car

from sfbulk.config import load_paths
from sfbulk.config.capp import MAX_MEMBER_BYTES
from sfbulk.connector.connection import Connector
from sfbulk.errors import ConfigErrors


@pytest.fixture(scope="module")
def connectors():
    return {"salesforcebulk": Connector.load()}


def test_a_car_loads_like_the_deployment_folder(tmp_path, connectors):
    from_car = load_paths([make_car(tmp_path / "BulkApp_1.0.0.car")], connectors=connectors)
    from_folder = load_paths([DEFAULT], connectors=connectors)
    for table in ("proxies", "apis", "sequences", "endpoints", "local_entries"):
        assert set(getattr(from_car, table)) == set(getattr(from_folder, table)), table
    assert from_car.imports["salesforcebulk"][0] == "enabled"
    assert (
        from_car.apis["BulkJobs:vv1"].source
        == f"{tmp_path / 'BulkApp_1.0.0.car'}!/BulkJobsAPI_1.0.0/BulkJobsAPI.xml:11"
    )
    assert any("registry/resource artifact 'conf' skipped" in w for w in from_car.warnings), from_car.warnings


def test_carbonapps_beside_synapse_configs_are_deployed(tmp_path, connectors):
    server = tmp_path / "repository" / "deployment" / "server"
    (server / "synapse-configs" / "default" / "sequences").mkdir(parents=True)
    (server / "synapse-configs" / "default" / "sequences" / "main.xml").write_text(
        '<sequence xmlns="http://ws.apache.org/ns/synapse" name="main"><in><drop/></in><out><send/></out></sequence>'
    )
    (server / "carbonapps").mkdir()
    make_car(server / "carbonapps" / "BulkApp_1.0.0.car")
    for folder in (tmp_path, server):
        cfg = load_paths([folder], connectors=connectors)
        assert "main" in cfg.sequences and set(cfg.apis) == {"BulkJobs:vv1"}, folder
    assert set(load_paths([server / "carbonapps"], connectors=connectors).apis) == {"BulkJobs:vv1"}


def test_a_car_shipping_another_connector_is_an_error(tmp_path, connectors):
    car = make_car(tmp_path / "gmail.car", connector="gmail")
    with pytest.raises(ConfigErrors) as info:
        load_paths([car], connectors=connectors)
    (message,) = [str(e) for e in info.value.errors]
    assert "the .car ships the WSO2 connector 'gmail'" in message and "docs/connector.md" in message


def test_broken_members_are_reported_with_their_place_in_the_car(tmp_path):
    car = make_car(
        tmp_path / "app.car",
        extra={
            "Broken_1.0.0/artifact.xml": descriptor("Broken", "synapse/sequence", "Broken.xml"),
            "Broken_1.0.0/Broken.xml": '<sequence xmlns="http://ws.apache.org/ns/synapse" name="b"><nope/></sequence>',
            "Lost_1.0.0/artifact.xml": descriptor("Lost", "synapse/api", "Lost.xml"),
        },
    )
    with pytest.raises(ConfigErrors) as info:
        load_paths([car])
    (message,) = [str(e) for e in info.value.errors]
    assert "artifact 'Lost' names 'Lost_1.0.0/Lost.xml', which the archive lacks" in message
    broken = make_car(
        tmp_path / "app2.car",
        extra={
            "Broken_1.0.0/artifact.xml": descriptor("Broken", "synapse/sequence", "Broken.xml"),
            "Broken_1.0.0/Broken.xml": '<sequence xmlns="http://ws.apache.org/ns/synapse" name="b"><nope/></sequence>',
        },
    )
    with pytest.raises(ConfigErrors) as info:
        load_paths([broken])
    (message,) = [str(e) for e in info.value.errors]
    assert f"{broken}!/Broken_1.0.0/Broken.xml:1" in message and "Unknown mediator" in message


def test_unreadable_and_oversized_archives_are_refused(tmp_path):
    not_zip = tmp_path / "x.car"
    not_zip.write_bytes(b"not a zip")
    big = make_car(
        tmp_path / "big.car",
        extra={
            "Big_1.0.0/artifact.xml": descriptor("Big", "synapse/sequence", "Big.xml"),
            "Big_1.0.0/Big.xml": "<a>" + " " * (MAX_MEMBER_BYTES + 1) + "</a>",  # compresses to a few KB
        },
    )
    with pytest.raises(ConfigErrors) as info:
        load_paths([not_zip, big])
    found = [str(e) for e in info.value.errors]
    assert any("not a readable Carbon Application" in e for e in found), found
    assert any("Big_1.0.0/Big.xml is" in e and f"over the {MAX_MEMBER_BYTES}" in e for e in found), found
