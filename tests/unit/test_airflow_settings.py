"""sfbulk.airflow.settings: an ``sfbulk`` Airflow connection -> init parameters (pure; no Airflow needed)."""

from __future__ import annotations

import pytest

from sfbulk.airflow.settings import FIELDS, conn_fields, resolve, ui_field_behaviour
from sfbulk.connector.auth import INIT_PARAMETERS
from sfbulk.errors import ConfigError

HOST = "https://example.my.salesforce.com"


def _resolve(extra: dict[str, object] | None = None, **attrs: object):  # noqa: ANN202 - test helper
    values = {"host": HOST, "login": "id", "password": "secret", **attrs}
    return resolve("sf", extra=extra if extra is not None else {"refresh_token": "rt"}, **values)  # type: ignore[arg-type]


def test_the_refresh_token_flow_maps_onto_init_parameters() -> None:
    got = _resolve(
        {"refresh_token": "rt", "token_endpoint": "https://test.salesforce.com", "api_version": "61.0"}
    )
    assert got.init == {
        "apiUrl": HOST,
        "clientId": "id",
        "clientSecret": "secret",
        "refreshToken": "rt",
        "accessToken": "-",  # the seed the CLI uses too: the first answer triggers the grant
        "tokenEndpointHostname": "https://test.salesforce.com",
        "apiVersion": "61.0",
    }
    assert got.labels["refreshToken"] == "extra.refresh_token" and got.labels["apiUrl"] == "host"


def test_a_bare_host_gets_https_and_the_port() -> None:
    assert _resolve(host="example.my.salesforce.com", port=8443).init["apiUrl"] == (
        "https://example.my.salesforce.com:8443"
    )
    assert _resolve(host="http://127.0.0.1:8281/").init["apiUrl"] == "http://127.0.0.1:8281"


def test_the_old_form_prefix_and_extra_init_are_accepted() -> None:
    got = _resolve({"extra__sfbulk__refresh_token": "rt", "init": {"intervalTime": "1000"}})
    assert got.init["refreshToken"] == "rt" and got.init["intervalTime"] == "1000"


@pytest.mark.parametrize(
    ("extra", "attrs", "message"),
    [
        ({"refresh_tokn": "rt"}, {}, "unknown extra field 'refresh_tokn'"),
        ({}, {}, "no credentials: set extra.refresh_token"),
        ({"refresh_token": "rt"}, {"host": ""}, "no instance URL: set its host"),
        ({"refresh_token": "rt"}, {"login": None}, "extra.refresh_token needs the client id in login"),
        ({"refresh_token": "rt", "auth_flow": "magic"}, {}, "extra.auth_flow 'magic' is not one of"),
        ({"refresh_token": "rt", "init": {"nope": "1"}}, {}, "extra.init.nope is not an init parameter"),
        ({"refresh_token": "rt", "init": {"refreshToken": "x"}}, {}, "repeats extra.refresh_token"),
        ({"refresh_token": ["rt"]}, {}, "extra.refresh_token must be a string"),
    ],
)
def test_mistakes_are_named_by_the_field_the_user_wrote(
    extra: dict[str, object], attrs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        _resolve(extra, **attrs)
    assert "'sf'" in str(raised.value)  # the connection id
    assert "secret" not in str(raised.value).replace("client secret", "")


def test_a_flow_needing_an_init_parameter_this_version_lacks_is_refused_not_dropped() -> None:
    """Against an sfbulk whose init lacks the grant parameters, the setting is refused by name."""
    known = tuple(name for name in INIT_PARAMETERS if name != "grantType")
    extra = {"auth_flow": "jwt_bearer", "username": "u@example.com", "private_key_file": "/k.pem"}
    with pytest.raises(ConfigError, match="extra.auth_flow needs the init parameter 'grantType'"):
        resolve("sf", host=HOST, login="id", password=None, extra=extra, known_init=known)


def test_the_grants_map_onto_the_init_parameters_by_name() -> None:
    extra = {"auth_flow": "jwt_bearer", "username": "u@example.com", "private_key_file": "/k.pem"}
    got = resolve("sf", host=HOST, login="id", password=None, extra=extra)
    assert got.init == {
        "apiUrl": HOST,
        "clientId": "id",
        "grantType": "jwt_bearer",
        "username": "u@example.com",
        "privateKeyFile": "/k.pem",
    }
    # refresh_token and access_token are not sent as grantType: the connector picks them itself
    got = resolve(
        "sf", host=HOST, login="id", password="s", extra={"auth_flow": "refresh_token", "refresh_token": "r"}
    )
    assert "grantType" not in got.init and got.init["refreshToken"] == "r"


def test_the_form_comes_from_the_same_table() -> None:
    fields = conn_fields()
    assert set(fields) == {f.name for f in FIELDS if f.name}
    assert {name for name, spec in fields.items() if spec["schema"].get("format") == "password"} == {
        f.name for f in FIELDS if f.name and f.secret
    }
    assert ui_field_behaviour()["relabeling"] == {
        "host": "Instance URL",
        "login": "Client id",
        "password": "Client secret",
    }


def test_docs_airflow_md_shows_the_table_the_hook_maps_from() -> None:
    from pathlib import Path

    from sfbulk.airflow.settings import label_of

    doc = (Path(__file__).resolve().parents[2] / "docs" / "airflow.md").read_text(encoding="utf-8")
    for f in FIELDS:
        init = f"`{f.init}`" if f.init else "(the registry)"
        row = f"| `{label_of(f)}` | {init} | {'yes' if f.secret else ''}".rstrip() + " |"
        assert row in doc, f
