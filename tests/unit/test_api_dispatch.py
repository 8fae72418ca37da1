"""REST API dispatch as WSO2 MI does it: contexts and versions, url-mapping and uri-template
precedence, uri.var / query values, 404 / 405 / OPTIONS (sfbulk/mediators/api.py)."""

from __future__ import annotations

import pytest

from sfbulk.errors import ConfigError
from sfbulk.mediators.api import Api, NoApiMatch, Resource, UriTemplate, UrlMapping, parse_query, select_api


@pytest.mark.parametrize(
    ("template", "path", "query", "expected"),
    [
        ("/jobs/{jobId}", "/jobs/750x", {}, {"jobId": "750x"}),
        ("/jobs/{jobId}", "/jobs/750x/", {}, {"jobId": "750x"}),  # one trailing slash tolerated
        ("/jobs/{jobId}", "/jobs/a%20b", {}, {"jobId": "a b"}),  # values are URL-decoded
        ("/jobs/{jobId}", "/jobs/a/b", {}, None),  # {var} is one segment
        ("/jobs/{jobId}", "/jobs", {}, None),
        ("/files/{+path}", "/files/a/b.csv", {}, {"path": "a/b.csv"}),  # {+var} takes the rest
        ("/jobs/{jobId}/batches/{batchId}", "/jobs/7/batches/9", {}, {"jobId": "7", "batchId": "9"}),
        ("/jobs/{jobId}?q={q}", "/jobs/7", {"q": "a b", "x": "1"}, {"jobId": "7", "q": "a b"}),
        ("/jobs/{jobId}?q={q}", "/jobs/7", {"x": "1"}, None),  # a query template needs its parameter
        ("/jobs?state=Open&limit={n}", "/jobs", {"limit": "5", "state": "Open"}, {"n": "5"}),  # any order
        ("/jobs?state=Open", "/jobs", {"state": "Closed"}, None),
        ("/search{?q,limit}", "/search", {"q": "x"}, {"q": "x"}),  # RFC 6570 optional query form
        ("/x/*", "/x/anything/below", {}, {}),
        ("/", "/", {}, {}),
    ],
)
def test_uri_template_matching(template, path, query, expected):
    assert UriTemplate(template).match(path, query) == expected


@pytest.mark.parametrize(
    ("mapping", "path", "exact", "prefix", "extension"),
    [
        ("/x", "/x", True, 0, False),
        ("/x", "/x/", True, 0, False),
        ("/x", "/x/y", False, 0, False),
        ("/x/*", "/x", False, 3, False),
        ("/x/*", "/x/y/z", False, 3, False),
        ("/x/*", "/xy", False, 0, False),
        ("/*", "/anything", False, 1, False),
        ("*.jsp", "/a/b.jsp", False, 0, True),
        ("*.jsp", "/a/b.jspx", False, 0, False),
    ],
)
def test_url_mapping_forms(mapping, path, exact, prefix, extension):
    url = UrlMapping(mapping)
    assert (url.exact(path), url.prefix_length(path), url.extension(path)) == (exact, prefix, extension)


def test_an_overlong_path_never_backtracks_through_a_template():
    import time

    for template, attack in (
        (UriTemplate("/{+a}/{+b}/{+c}/end"), "/" + "x/" * 3000 + "nope"),
        (UriTemplate("/{a}{b}{c}/end"), "/" + "x" * 2000 + "/nope"),
        (UriTemplate("/{+a}/{+b}/end"), "/" + "x/" * 2000 + "nope"),
    ):
        started = time.perf_counter()
        assert template.match(attack, {}) is None
        assert time.perf_counter() - started < 2.0, template.template  # unbounded: minutes
    assert UriTemplate("/{+a}/{+b}/{+c}/end").match("/a/b/c/d/end", {}) == {"a": "a/b", "b": "c", "c": "d"}
    assert UriTemplate("/{a}{b}/end").match("/xy/end", {}) == {"a": "x", "b": "y"}


def test_parse_query_decodes_and_keeps_the_first_value():
    assert parse_query("a=1&b=x%20y&a=2&c=&d+e=f+g") == {"a": "1", "b": "x y", "c": "", "d e": "f g"}


def api(*resources: Resource, context: str = "/shop", **kw) -> Api:
    return Api("Shop", context, resources, **kw)


def test_url_mapping_precedence_exact_then_longest_prefix_then_extension_then_templates():
    exact = Resource(url_mapping="/orders/list")
    short = Resource(url_mapping="/orders/*")
    long = Resource(url_mapping="/orders/archive/*")
    ext = Resource(url_mapping="*.csv")
    template = Resource(uri_template="/orders/{id}")
    default = Resource()
    shop = api(template, ext, short, long, exact, default)
    pick = lambda path: select_api([shop], "GET", "/shop" + path).resource  # noqa: E731
    assert pick("/orders/list") is exact
    assert pick("/orders/archive/2020") is long
    assert pick("/orders/7") is short  # url-mappings are tried before uri-templates
    assert pick("/exports/a.csv") is ext
    assert pick("/other") is default  # a resource with neither takes every path


def test_uri_templates_are_tried_in_order_and_bind_uri_vars_and_query_params():
    first = Resource(("GET",), uri_template="/orders/{id}")
    second = Resource(("GET",), uri_template="/orders/{+rest}")
    match = select_api([api(first, second)], "GET", "/shop/orders/7?expand=lines&x=%C3%A9")
    assert match.resource is first and match.uri_vars == {"id": "7"}
    assert match.query_params == {"expand": "lines", "x": "é"}
    assert (match.sub_path, match.rest_url_postfix) == ("/orders/7", "/orders/7?expand=lines&x=%C3%A9")
    assert select_api([api(first, second)], "GET", "/shop/orders/7/lines").resource is second


def test_context_matching_is_by_whole_segments_and_the_longest_context_wins():
    shop = api(Resource())
    shop_admin = Api("Admin", "/shop/admin", (Resource(),))
    assert select_api([shop, shop_admin], "GET", "/shop/admin/x").api is shop_admin
    assert select_api([shop, shop_admin], "GET", "/shop/administrator").api is shop
    assert select_api([shop], "GET", "/shop").sub_path == "/"
    with pytest.raises(NoApiMatch) as info:
        select_api([shop], "GET", "/shopping")
    assert info.value.status == 404


@pytest.mark.parametrize(
    ("context", "version_type", "served_at"),
    [
        ("/shop", "url", "/shop/1.0.0"),
        ("/shop/{version}/api", "context", "/shop/1.0.0/api"),
        ("/shop", "context", "/shop/1.0.0"),
        ("/shop", None, "/shop"),
    ],
)
def test_versions(context, version_type, served_at):
    versioned = Api("Shop", context, (Resource(),), version="1.0.0", version_type=version_type)
    assert versioned.full_context == served_at
    assert versioned.key == "Shop:v1.0.0"  # Synapse's key for a versioned API
    assert select_api([versioned], "GET", served_at + "/x").sub_path == "/x"


def test_two_versions_of_an_api_are_told_apart_by_path():
    v1 = Api("Shop", "/shop", (Resource(),), version="v1", version_type="url")
    v2 = Api("Shop", "/shop", (Resource(),), version="v2", version_type="url")
    assert select_api([v1, v2], "GET", "/shop/v2/orders").api is v2
    with pytest.raises(NoApiMatch):
        select_api([v1, v2], "GET", "/shop/v3/orders")


def test_method_mismatch_is_405_with_the_allowed_methods_and_unknown_path_404():
    shop = api(
        Resource(("GET",), uri_template="/orders/{id}"),
        Resource(("DELETE", "PUT"), uri_template="/orders/{id}"),
    )
    with pytest.raises(NoApiMatch) as info:
        select_api([shop], "POST", "/shop/orders/7")
    assert (info.value.status, info.value.allow) == (405, ("GET", "PUT", "DELETE"))
    assert "POST is not allowed on /orders/7" in str(info.value)
    with pytest.raises(NoApiMatch) as info:
        select_api([shop], "GET", "/shop/customers/7")
    assert info.value.status == 404 and info.value.allow == ()
    assert "No resource of API 'Shop'" in str(info.value)


def test_options_on_a_path_no_resource_declares_it_for_answers_allow():
    shop = api(Resource(("GET", "POST"), uri_template="/orders"))
    match = select_api([shop], "OPTIONS", "/shop/orders")
    assert match.options_only and match.allow == ("GET", "POST")
    declared = Resource(("OPTIONS",), uri_template="/orders")
    assert select_api([api(declared)], "OPTIONS", "/shop/orders").resource is declared


def test_a_resource_without_methods_takes_every_method():
    anything = Resource(uri_template="/x")
    for method in ("GET", "POST", "PATCH", "DELETE"):
        assert select_api([api(anything)], method, "/shop/x").resource is anything


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Api("A", "shop", ()), "must start with '/'"),
        (lambda: Api("A", "/shop", (), version="1", version_type="path"), "version-type 'path'"),
        (lambda: Api("A", "/shop", (), version_type="url"), "needs a version"),
        (lambda: Api("A", "/{version}/x", ()), "no version is set"),
        (lambda: Resource(uri_template="/x", url_mapping="/x"), "not both"),
        (lambda: Resource(("FETCH",)), "unknown method(s) FETCH"),
        (lambda: Resource(uri_template="x/{y}"), "must start with '/'"),
        (lambda: Resource(url_mapping="x"), "url-mapping 'x'"),
        (lambda: Resource(uri_template="/x?q"), "is not name={variable}"),
    ],
)
def test_definition_errors(build, message):
    with pytest.raises(ConfigError) as info:
        build()
    assert message in str(info.value)
