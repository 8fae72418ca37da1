"""Engine init_defaults: an unmodified proxy refreshes its token at a configured token endpoint.

The seed proxy never passes tokenEndpointHostname (WSO2's 2017 connector hard-coded
login.salesforce.com), so pointing it at a sandbox, or at the emulator, is configuration.
"""

from __future__ import annotations

from pathlib import Path

from sfbulk.engine.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "synapse"


def _request(emulator, *, access_token: str = "", token_endpoint: str | None = None) -> bytes:
    creds = emulator.credentials
    extra = f"<tokenEndpointHostname>{token_endpoint}</tokenEndpointHostname>" if token_endpoint else ""
    return (
        "<createJob><apiVersion>34</apiVersion>"
        f"<accessToken>{access_token}</accessToken><apiUrl>{emulator.base_url}</apiUrl>"
        f"<refreshToken>{creds['refresh_token']}</refreshToken><clientId>{creds['client_id']}</clientId>"
        f"<clientSecret>{creds['client_secret']}</clientSecret><intervalTime>1000000</intervalTime>"
        f"<registryPath>connectors/SalesforceBulk</registryPath>{extra}"
        "<operation>insert</operation><contentType>CSV</contentType><object>Contact</object></createJob>"
    ).encode()


def test_seed_proxy_refreshes_at_the_engine_default_token_endpoint(emulator, tmp_path: Path) -> None:
    with Engine(
        registry=tmp_path / "registry",
        init_defaults={"salesforcebulk": {"tokenEndpointHostname": emulator.base_url}},
    ) as engine:
        engine.load(SEED)
        result = engine.handle(
            "salesforcebulk_createJob",
            method="POST",
            uri="/services/salesforcebulk_createJob",
            headers=[("Content-Type", "text/xml")],
            body=_request(emulator),  # no access token: the first call refreshes
        )
    assert result.status == 201, result.body
    assert b"<state>Open</state>" in result.body
    stored = (tmp_path / "registry" / "connectors" / "SalesforceBulk" / "accessToken").read_text()
    assert stored and stored != "", "the refreshed token is cached in the registry"


def test_a_token_endpoint_passed_by_the_flow_wins_over_the_default(emulator, tmp_path: Path) -> None:
    with Engine(
        registry=tmp_path / "registry",
        # A default that cannot answer: if it were used, the refresh would fail with a transport fault.
        init_defaults={"salesforcebulk": {"tokenEndpointHostname": "http://127.0.0.1:9"}},
    ) as engine:
        engine.load(ROOT / "examples" / "flows.yaml", SEED / "faultHandlerSeq.xml")
        flows = [name for name in engine.proxies if "createJob" in name]
        assert flows, engine.proxies
        result = engine.handle(
            flows[0],
            method="POST",
            uri=f"/services/{flows[0]}",
            headers=[("Content-Type", "application/xml")],
            body=_request(emulator, token_endpoint=emulator.base_url),
        )
    assert result.status == 201, result.body
