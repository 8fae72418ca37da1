"""The outbound allow-list (sfbulk.transport.HostPolicy) and the settings file that feeds it."""

from __future__ import annotations

import click
import pytest

from sfbulk.cli.settings import Settings, build_host_policy, load_settings
from sfbulk.errors import ConfigError
from sfbulk.transport import SALESFORCE_HOST_PATTERNS, HostNotAllowedError, HostPolicy

DEFAULT = HostPolicy.default("http://127.0.0.1:8281")


@pytest.mark.parametrize(
    "url",
    [
        "https://login.salesforce.com",
        "https://test.salesforce.com/services/oauth2/token",
        "https://acme.my.salesforce.com",
        "https://acme--dev.sandbox.my.salesforce.com:443",
        "https://na1.salesforce.com",
        "https://acme.lightning.force.com",
        "https://x.cloudforce.com",
        "https://x.database.com",
        "https://acme.my.salesforce-sites.com",
        "https://acme.my.salesforce.mil",
        "https://acme.my.sfcrmproducts.cn",
        "http://127.0.0.1:8281",
        "HTTPS://ACME.MY.SALESFORCE.COM",
        "https://login.salesforce.com./",
    ],
)
def test_salesforce_domains_and_the_token_endpoint_are_allowed_by_default(url):
    assert DEFAULT.refusal(url) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8282", "127.0.0.1:8282 is not in the outbound allow-list"),
        ("http://localhost:8281", "localhost:8281 is not"),  # names are compared as written: no DNS
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254:80 is not"),
        ("https://salesforce.com", "salesforce.com:443 is not"),  # '*.' needs a label before the domain
        ("https://evilsalesforce.com", "evilsalesforce.com:443 is not"),
        ("https://acme.my.salesforce.com:8443", "acme.my.salesforce.com:8443 is not"),  # default ports only
        ("https://evil.com#.salesforce.com", "evil.com:443 is not"),
        ("https://login.salesforce.com@evil.com", "user credentials"),
        ("http://evil.com\\.salesforce.com/", "not a plain host name"),
        ("http://evil\u3002salesforce.com/", "not a plain host name"),
        ("ftp://a.salesforce.com", "only http and https"),
        ("http://[::1]:8281", "[::1]:8281 is not"),
        ("http://a.salesforce.com:99999", "not a valid URL"),
    ],
)
def test_everything_else_is_refused_with_the_reason(url, reason):
    assert reason in (DEFAULT.refusal(url) or "")
    with pytest.raises(HostNotAllowedError, match="apiUrl refused"):
        DEFAULT.check(url, "apiUrl")


def test_patterns_hosts_ports_wildcards():
    policy = HostPolicy(["proxy.example.com:8443", "*.corp.example", "10.0.0.7:*", "[::1]:8281"])
    assert policy.refusal("https://proxy.example.com:8443/x") is None
    assert policy.refusal("https://proxy.example.com/x") is not None  # no port in the URL: 443
    assert (
        policy.refusal("http://a.b.corp.example") is None
        and policy.refusal("http://corp.example") is not None
    )
    assert policy.refusal("http://10.0.0.7:1234") is None
    assert policy.refusal("http://[::1]:8281") is None
    assert HostPolicy(["*"]).refusal("http://anything.example:9999") is None
    assert HostPolicy([]).refusal("https://login.salesforce.com") is not None


@pytest.mark.parametrize(
    "pattern",
    ["", "http://x.com", "a.*.com", "x.com:0", "x.com:http", "::1", "[::1", "user@x.com", "bad_host!"],
)
def test_bad_patterns_are_refused_with_a_reason(pattern):
    with pytest.raises(ValueError, match="host pattern|empty host pattern"):
        HostPolicy([pattern])


def test_build_host_policy_names_the_flag_or_the_file_line(tmp_path):
    with pytest.raises(click.BadParameter, match="x.com:0") as info:
        build_host_policy(None, Settings(), ["x.com:0"])
    assert info.value.param_hint == "--allow-host"
    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("security:\n  allow_hosts:\n    - ok.example.com\n    - 'a.*.com'\n")
    with pytest.raises(click.BadParameter, match=r"settings.yaml:4: security.allow_hosts"):
        build_host_policy(None, load_settings(settings_file), [])
    with pytest.raises(click.BadParameter) as info:
        build_host_policy("not a url", Settings(), [])
    assert info.value.param_hint == "--token-endpoint"
    policy = build_host_policy(
        "https://test.salesforce.com", Settings(["ok.example.com"], ["f:1"]), ["b.example:1"]
    )
    assert [p.text for p in policy.patterns] == [
        *SALESFORCE_HOST_PATTERNS,
        "test.salesforce.com:443",
        "ok.example.com",
        "b.example:1",
    ]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("server:\n  x: 1\n", "unknown section 'server'", 1),
        ("security:\n  allow_host: [a]\n", "unknown key security.allow_host", 2),
        ("security:\n  allow_hosts: a.example\n", "must be a list", 2),
        ("- a\n", "a settings file is a mapping", 1),
        ("security: [\n", "invalid YAML", None),
    ],
)
def test_settings_file_errors_name_file_line_and_key(tmp_path, text, message, line):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(path)
    assert info.value.file == str(path)
    if line:
        assert info.value.line == line


def test_an_empty_settings_file_is_no_settings(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("# nothing yet\n")
    assert load_settings(path).allow_hosts == []
    path.write_text("security:\n  allow_hosts:\n    - a.example.com\n")
    assert load_settings(path).allow_hosts == ["a.example.com"]


@pytest.mark.parametrize(
    ("template", "literal"),
    [
        ("http://backend:9000/jobs", True),
        ("http://backend:9000/{uri.var.path}?q={query.param.q}", True),
        ("https://backend/x#{uri.var.f}", True),
        ("{uri.var.apiUrl}/services/async/34.0/job", False),
        ("{+uri.var.base}/x", False),
        ("http://{uri.var.host}/x", False),
        ("http://backend{uri.var.port}/x", False),
        ("http://backend:{uri.var.port}", False),
        ("{uri.var.scheme}://backend/x", False),
    ],
)
def test_which_call_templates_take_their_host_from_the_message(template, literal):
    from sfbulk.mediators.http import HttpEndpoint

    assert HttpEndpoint(template).dynamic_host is not literal
