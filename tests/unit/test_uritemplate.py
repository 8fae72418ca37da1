"""RFC 6570 expansion as Synapse's http endpoint does it: vectors U1-U6 plus the operators."""

from __future__ import annotations

import pytest

from sfbulk.mediators.uritemplate import expand, resolve_endpoint_url

API = "https://ap2.salesforce.com/services/async/34.0"


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        ("{+uri.var.apiUrl}/job", {"uri.var.apiUrl": API}, API + "/job"),  # U1
        ("{+uri.var.apiUrl}/job/{+uri.var.jobId}", {"uri.var.apiUrl": API}, API + "/job/"),  # U2
        ("http://h/q?x={uri.var.q}", {"uri.var.q": "a b/c"}, "http://h/q?x=a%20b%2Fc"),  # U3
        ("http://h/{+uri.var.p}", {"uri.var.p": "a/b c"}, "http://h/a/b%20c"),  # U4
        ("{uri.var.base}/x", {"uri.var.base": "https://h:8443/api"}, "https://h:8443/api/x"),  # U5
        (
            "https://login.salesforce.com/services/oauth2/token",
            {},
            "https://login.salesforce.com/services/oauth2/token",
        ),  # U6
        ("http://h/{+uri.var.p}", {"uri.var.p": "a%2Fb"}, "http://h/a%2Fb"),  # reserved keeps %XX
        ("http://h/{uri.var.p}", {"uri.var.p": "a%2Fb"}, "http://h/a%252Fb"),  # simple encodes %
        ("http://h/{uri.var.p}", {"uri.var.p": "é"}, "http://h/%C3%A9"),
        ("http://h/{a} b", {"a": "1"}, "http://h/{a} b"),  # result no URI parser accepts → raw template
        ("{x}/a", {"y": "1"}, "/a"),  # undefined variables expand to nothing
    ],
)
def test_endpoint_url(template, variables, expected):
    assert resolve_endpoint_url(template, variables) == expected


def test_no_variables_leaves_even_expressions_alone():
    assert resolve_endpoint_url("http://h/{uri.var.x}", {}) == "http://h/{uri.var.x}"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{?x,y}", "?x=1&y=a%20b"),
        ("{&x}", "&x=1"),
        ("{/x,y}", "/1/a%20b"),
        ("{.x}", ".1"),
        ("{;x,e}", ";x=1;e"),
        ("{#y}", "#a%20b"),
        ("{y:1}", "a"),
        ("{x,y}", "1,a%20b"),
        ("{?none}", ""),
    ],
)
def test_rfc6570_operators(template, expected):
    assert expand(template, {"x": "1", "y": "a b", "e": ""}) == expected
