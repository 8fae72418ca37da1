"""Expressions: synapse.md §4 test vectors X1-X11, V1-V10, P1-P6, the null/empty rules, get-property scopes,
json-eval, {..} values, compile-once."""

from __future__ import annotations

import pytest

from sfbulk.errors import ConfigError, ExpressionError
from sfbulk.expressions import expression as expressions
from sfbulk.expressions import variables
from sfbulk.expressions.expression import (
    GetPropertyExpression,
    Value,
    VariableExpression,
    XPathExpression,
    compile_expression,
)
from sfbulk.message.context import MessageContext


def xml(body: str, *, uri: str = "/services/P", headers=(), engine=None) -> MessageContext:
    return MessageContext.from_http(
        method="POST",
        uri=uri,
        headers=[("Content-Type", "application/xml"), *headers],
        body=body.encode(),
        engine=engine,
    )


def sv(expr: str, ctx: MessageContext, namespaces=None):
    return compile_expression(expr, namespaces).string_value(ctx)


# --- §4.2 string conversion -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expr, body, expected",
    [
        ("//apiUrl/text()", "<r><apiUrl>u</apiUrl></r>", "u"),  # X1
        ("//apiUrl/text()", "<r><apiUrl/></r>", ""),  # X2
        ("//apiUrl/text()", "<r/>", ""),  # X2 absent
        ("//apiUrl", "<r><apiUrl> u </apiUrl></r>", " u "),  # X3 (WS17: untrimmed)
        (
            "//objects",
            "<r><objects>\n <values><v>1</v></values></objects></r>",
            "<objects>\n <values><v>1</v></values></objects>",
        ),  # X4
        ("//n/text()", "<r><n>a</n><n>b</n></r>", "ab"),  # X5
        ("//x/@id", '<r><x id="7"/></r>', "7"),  # X6
        ("//x", "<r><x>a<i/>b<i>zz</i>c</x></r>", "abc"),  # direct text children only
        ("//x", "<r><x>\u00a0<i/></x></r>", "<x>\u00a0<i/></x>"),  # NBSP counts as blank
        ("fn:concat('a','b')", "<r/>", "ab"),  # X9
        ("count(//i)", "<r><i/><i/></r>", "2.0"),  # P5
        ("boolean(//x)", "<r/>", "false"),  # P6
        ("1+1", "<r/>", "2.0"),
        ("concat('x',1+1)", "<r/>", "x2"),
        ("count(//i) * 10000000", "<r><i/></r>", "1.0E7"),
        ("0.5 div 0", "<r/>", "Infinity"),
        ("number('x')", "<r/>", "NaN"),
        ("//s/text()", "<r><s>ID-42</s></r>", "ID-42"),  # P9 input
        ("$body/*[1]", "<createJob><a>1</a></createJob>", "<createJob><a>1</a></createJob>"),  # V4
        ("//apiVersion/text()", "<createJob><apiVersion>34.0</apiVersion></createJob>", "34.0"),  # §6.2 note
    ],
)
def test_string_value_vectors(expr: str, body: str, expected: str) -> None:
    assert sv(expr, xml(body)) == expected


def test_p1_p2_property_expression_results() -> None:
    expr = compile_expression("//apiUrl/text()")
    assert expr.string_value(xml("<r><apiUrl>https://x</apiUrl></r>")) == "https://x"
    assert expr.string_value(xml("<r/>")) == ""  # P2: "" (not None): the key is set


def test_unprefixed_names_mean_no_namespace() -> None:
    ctx = xml('<r xmlns="urn:a"><apiUrl>u</apiUrl></r>')
    assert sv("//apiUrl/text()", ctx) == ""
    assert sv("//a:apiUrl/text()", ctx, {"a": "urn:a", None: "http://ws.apache.org/ns/synapse"}) == "u"


def test_namespaced_header_search() -> None:
    env = (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h>hv</h></s:Header>'
        "<s:Body><b>bv</b></s:Body></s:Envelope>"
    )
    ctx = MessageContext.from_http(
        method="POST", uri="/services/P", headers=[("Content-Type", "text/xml")], body=env.encode()
    )
    assert sv("//h/text()", ctx) == "hv"  # // searches Header and Body
    assert sv("$header/h", ctx) == "hv"
    assert sv("local-name($env)", ctx) == "Envelope"


# --- null rules (§4.5, §9) --------------------------------------------------------------------------------


def test_x7_missing_variable_is_none_but_empty_inside_xpath() -> None:
    ctx = xml("<r/>")
    assert sv("$ctx:missing", ctx) is None
    assert sv("get-property('missing')", ctx) is None  # P4
    assert sv("string($ctx:missing)", ctx) == ""
    assert sv("concat('a', $ctx:missing)", ctx) == "a"
    for comparison in (
        "$ctx:missing = 'a'",
        "$ctx:missing != 'a'",
        "get-property('missing') = 'a'",
        "get-property('missing') != 'a'",
    ):
        assert compile_expression(comparison).boolean_value(ctx) is False
    assert compile_expression("boolean($ctx:missing)").boolean_value(ctx) is False
    assert compile_expression("$ctx:missing").boolean_value(ctx) is False


def test_empty_string_is_false_non_empty_true() -> None:
    ctx = xml("<r/>")
    ctx.set_property("e", "")
    ctx.set_property("s", "x")
    assert compile_expression("boolean($ctx:e)").boolean_value(ctx) is False
    assert compile_expression("boolean($ctx:s)").boolean_value(ctx) is True
    assert compile_expression("$ctx:e = ''").boolean_value(ctx) is True


def test_x8_concat_with_properties() -> None:
    ctx = xml("<r/>")
    ctx.set_property("a", "https://h")
    ctx.set_property("v", "34.0")
    expr = compile_expression("concat($ctx:a,'/services/async/',$ctx:v)")
    assert expr.string_value(ctx) == "https://h/services/async/34.0"
    ctx.remove_property("v")
    assert expr.string_value(ctx) == "https://h/services/async/"


@pytest.mark.parametrize("n", ["7000000", 7000000.0])
def test_x11_numeric_comparison(n) -> None:
    ctx = xml("<r/>")
    ctx.set_property("n", n)
    ctx.set_property("m", "3000000")
    assert sv("$ctx:n > $ctx:m", ctx) == "true"


def test_integer_properties() -> None:  # V5 and the documented deviation from Jaxen's Integer -> NaN
    ctx = xml("<r/>")
    ctx.set_response(201, "Created", [("Content-Type", "application/xml")], b"<r/>")
    assert sv("$axis2:HTTP_SC", ctx) == "201"
    assert sv("string($axis2:HTTP_SC)", ctx) == "201"
    assert compile_expression("$axis2:HTTP_SC = 201").boolean_value(ctx) is True
    assert compile_expression("$axis2:HTTP_SC > 399").boolean_value(ctx) is False


# --- §4.3 variables ------------------------------------------------------------------------------------------


def test_v1_transport_header_case_insensitive() -> None:
    ctx = xml("<r/>")
    assert sv("$trp:content-type", ctx) == "application/xml"
    assert sv("$trp:Nope", ctx) is None


def test_v2_url_parameters() -> None:
    ctx = xml("<r/>", uri="/services/P?apiUrl=https%3A%2F%2Fh&apiVersion=34.0&a=x=y&s=a+b")
    assert sv("$url:apiVersion", ctx) == "34.0"
    assert sv("$url:APIURL", ctx) == "https://h"
    assert sv("$url:none", ctx) == ""
    assert sv("$url:a", ctx) == "x"
    assert sv("$url:s", ctx) == "a b"
    assert sv("concat($url:apiUrl, '/x')", ctx) == "https://h/x"


def test_v3_func_frames() -> None:
    ctx = xml("<r/>")
    assert sv("$func:jobId", ctx) is None
    ctx.push_frame({"jobId": "750x"})
    assert sv("$func:jobId", ctx) == "750x"
    assert sv("get-property('func', 'jobId')", ctx) == "750x"
    assert sv("$func:other", ctx) is None
    ctx.push_frame({"expr": compile_expression("$ctx:late")})
    ctx.set_property("late", "now")
    assert sv("$func:expr", ctx) == "now"  # stored expressions are evaluated on use


def test_operation_and_sys_and_dotted_names() -> None:
    ctx = xml("<r/>")
    ctx.set_property("k", "ov", "operation")
    ctx.set_property("uri.var.accessToken.reg", "tok")
    assert sv("$operation:k", ctx) == "ov"
    assert sv("$ctx:uri.var.accessToken.reg", ctx) == "tok"
    assert sv("concat($ctx:uri.var.accessToken.reg, '!')", ctx) == "tok!"
    assert sv("$sys:sfbulk.nope", ctx) == ""


def test_variables_inside_string_literals_are_not_rewritten() -> None:
    ctx = xml("<r/>")
    ctx.set_property("a", "A")
    assert sv("concat('$ctx:a', \"$trp:x\", $ctx:a)", ctx) == "$ctx:a$trp:xA"


# --- §4.4 get-property ---------------------------------------------------------------------------------------


def test_v6_v8_transport_action_and_soap_action() -> None:
    ctx = xml("<r/>", headers=[("Action", "urn:createJob"), ("SOAPAction", '"urn:x"')])
    assert sv("get-property('transport','Action')", ctx) == "urn:createJob"
    assert sv("$trp:Action", ctx) == "urn:createJob"
    assert sv("get-property('Action')", ctx) == "urn:x"


def test_v7_system_time(monkeypatch) -> None:
    monkeypatch.setattr(variables, "current_time_ms", lambda: 1513587000000)
    ctx = xml("<r/>")
    assert sv("get-property('SYSTEM_TIME')", ctx) == "1513587000000"
    assert sv("get-property('axis2', 'SYSTEM_TIME')", ctx) == "1513587000000"
    assert sv("$ctx:SYSTEM_TIME", ctx) is None
    assert sv("concat(get-property('SYSTEM_TIME'), '')", ctx) == "1513587000000"


def test_system_date_with_java_pattern(monkeypatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    import time as _time

    _time.tzset()
    try:
        monkeypatch.setattr(variables, "current_time_ms", lambda: 1513587000123)
        ctx = xml("<r/>")
        assert (
            sv("get-property('SYSTEM_DATE', \"yyyy-MM-dd'T'HH:mm:ss.SSSXXX\")", ctx)
            == "2017-12-18T08:50:00.123Z"
        )
        assert sv("get-property('default', 'SYSTEM_DATE', 'dd MMM yyyy')", ctx) == "18 Dec 2017"
    finally:
        monkeypatch.delenv("TZ")
        _time.tzset()


def test_v9_registry_scope(engine) -> None:
    engine.registry.put("connectors/SalesforceBulk/time", "1513587000000")
    ctx = xml("<r/>", engine=engine)
    assert sv("get-property('registry','connectors/SalesforceBulk/time')", ctx) == "1513587000000"
    assert sv("get-property('registry','connectors/SalesforceBulk/nope')", ctx) == ""
    ctx.set_property("path", "connectors/SalesforceBulk/time")
    assert sv("get-property('registry', $ctx:path)", ctx) == "1513587000000"  # dynamic key via XPath
    assert sv("get-property('registry', $ctx:path) = ''", ctx) == "false"


def test_v10_env_scope(monkeypatch) -> None:
    monkeypatch.setenv("SFBULK_TEST_HOME", "/root")
    ctx = xml("<r/>")
    assert sv("get-property('env','SFBULK_TEST_HOME')", ctx) == "/root"
    assert sv("get-property('env','SFBULK_TEST_UNSET_VAR')", ctx) == ""


def test_scopes_and_special_names() -> None:
    ctx = xml("<r/>", uri="/services/P?x=1")
    ctx.set_property("HTTP_SC", 404, "axis2")
    assert sv("get-property('axis2','HTTP_SC')", ctx) == "404"
    assert sv("get-property('operation','nope')", ctx) is None
    assert sv("get-property('To')", ctx) == "/services/P?x=1"
    assert sv("get-property('Action')", ctx) == ""
    assert sv("get-property('MESSAGE_FORMAT')", ctx) == "pox"
    assert sv("get-property('FAULT')", ctx) == ""
    message_id = sv("get-property('MessageID')", ctx)
    assert message_id.startswith("urn:uuid:") and sv("get-property('MessageID')", ctx) == message_id
    assert sv("get-property('')", ctx) == ""
    ctx.set_response(500, "Server Error", [("Content-Type", "application/xml")], b"<e/>")
    assert sv("get-property('FAULT')", ctx) == "true"


def test_local_entry_fallback(engine) -> None:
    engine.add_local_entry("k", "entry")
    ctx = xml("<r/>", engine=engine)
    assert sv("get-property('k')", ctx) == "entry"
    ctx.set_property("k", "prop")
    assert sv("get-property('k')", ctx) == "prop"
    assert sv("get-property('none')", ctx) is None


def test_base64_and_url_encode() -> None:
    ctx = xml("<r/>")
    ctx.set_property("s", "a b&c/é")
    assert sv("base64Encode('user:pass')", ctx) == "dXNlcjpwYXNz"
    assert sv("base64Decode('dXNlcjpwYXNz')", ctx) == "user:pass"
    assert sv("url-encode($ctx:s)", ctx) == "a+b%26c%2F%C3%A9"
    assert sv("ends-with('abc','bc')", ctx) == "true"


# --- compile-time rules ---------------------------------------------------------------------------------------


def test_fast_paths_are_recognised() -> None:
    assert isinstance(compile_expression("$ctx:a"), VariableExpression)
    assert isinstance(compile_expression(" $trp:Content-Type "), VariableExpression)
    assert isinstance(compile_expression("get-property('a')"), GetPropertyExpression)
    assert isinstance(compile_expression('get-property("registry", "a/b")'), GetPropertyExpression)
    assert isinstance(compile_expression("$ctx:a = 'x'"), XPathExpression)


def test_expressions_that_ignore_the_message_do_not_parse_it() -> None:
    ctx = MessageContext.from_http(
        method="POST", uri="/services/P", headers=[("Content-Type", "text/csv")], body=b"a,b"
    )
    ctx.set_property("a", "x")
    assert sv("concat($ctx:a, '/y')", ctx) == "x/y"
    assert not ctx.is_built  # the CSV body is still relayed byte for byte


@pytest.mark.parametrize(
    "bad, message",
    [
        ("//a[", "invalid XPath expression '//a\\['"),
        ("nosuch(1)", "unknown function nosuch"),
        ("$var:x", "unknown variable prefix"),
        ("$foo", "unknown variable \\$foo"),
        ("get-property('file', 'x')", "'file' is not supported"),
        ("get-property('registry', 'a@p')", "resource properties"),
        ("json-eval($.a[?(@.x)])", "unsupported JSONPath"),
        ("   ", "expression is required"),
    ],
)
def test_syntax_errors_are_config_errors(bad: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        compile_expression(bad)


def test_runtime_errors_are_expression_errors() -> None:
    ctx = xml("<r/>")
    with pytest.raises(ExpressionError, match="base64Decode"):
        compile_expression("base64Decode('\u00e9')").string_value(ctx)
    with pytest.raises(ExpressionError, match="base64Decode"):
        compile_expression("concat('x', base64Decode('\u00e9'))").string_value(ctx)


def test_compiled_once_evaluated_many_times(monkeypatch) -> None:
    compiled = []
    real = expressions._XPath

    def counting(*args, **kwargs):
        compiled.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(expressions, "_XPath", counting)
    expr = compile_expression("concat(//apiUrl/text(), '/', $ctx:v)")
    assert len(compiled) == 1
    for i in range(50):
        ctx = xml(f"<r><apiUrl>u{i}</apiUrl></r>")
        ctx.set_property("v", str(i))
        assert expr.string_value(ctx) == f"u{i}/{i}"
    assert len(compiled) == 1


# --- json-eval (X10, §4.2 rule 4) ----------------------------------------------------------------------------


def js(body: str) -> MessageContext:
    return MessageContext.from_http(
        method="POST", uri="/services/P", headers=[("Content-Type", "application/json")], body=body.encode()
    )


def test_x10_json_eval() -> None:
    ctx = js('{"access_token":"T","x":1,"f":1.5,"b":true,"n":null,"o":{"k":[1,{"z":"q"}]},"1a":"d"}')
    assert sv("json-eval($.access_token)", ctx) == "T"
    assert sv("json-eval($.nope)", ctx) == ""
    assert sv("json-eval($.x)", ctx) == "1"
    assert sv("json-eval($.f)", ctx) == "1.5"
    assert sv("json-eval($.b)", ctx) == "true"
    assert sv("json-eval($.n)", ctx) == "null"
    assert sv("json-eval($.o)", ctx) == '{"k":[1,{"z":"q"}]}'
    assert sv("json-eval($.o.k[1].z)", ctx) == "q"
    assert sv("json-eval($['o']['k'][0])", ctx) == "1"
    assert sv("json-eval($.o.k[-1].z)", ctx) == "q"
    assert sv("json-eval($..z)", ctx) == '["q"]'
    assert sv("json-eval($.o.k[*])", ctx) == '[1,{"z":"q"}]'
    assert sv("json-eval($['1a'])", ctx) == "d"
    assert sv("json-eval($.)", ctx).startswith('{"access_token":"T"')
    assert not ctx.is_built  # json-eval reads JSON without an XML round trip


def test_json_eval_on_xml_payload_converts_first() -> None:
    ctx = xml("<jobInfo><id>750</id><state>Open</state></jobInfo>")
    assert sv("json-eval($.jobInfo.id)", ctx) == "750"
    assert sv("json-eval($.jobInfo.state)", ctx) == "Open"


def test_xpath_on_json_payload_uses_the_xml_view() -> None:
    ctx = js('{"access_token":"T","b":[1,2]}')
    assert sv("//access_token/text()", ctx) == "T"
    assert sv("count(//b)", ctx) == "2.0"


# --- {...} values (§2.4 step 2) ------------------------------------------------------------------------------


def test_value_parse_rules() -> None:
    ctx = xml("<r><j>42</j></r>")
    ctx.set_property("jobId", "750x")
    assert Value.parse("{$ctx:jobId}").evaluate(ctx) == "750x"
    assert Value.parse("{$ctx:jobId}").is_dynamic
    assert Value.parse(" {$ctx:jobId} ").evaluate(ctx) == " {$ctx:jobId} "  # untrimmed literal
    assert Value.parse("{{$ctx:jobId}}").evaluate(ctx) == "{$ctx:jobId}"  # escaped
    assert Value.parse("Contact").evaluate(ctx) == "Contact"
    assert Value.parse("").evaluate(ctx) == ""
    assert Value.parse("{$ctx:missing}").evaluate(ctx) is None  # leaves a template param unbound
    assert Value.parse("{get-property('missing')}").evaluate(ctx) is None
    assert Value.parse("{//j/text()}").evaluate(ctx) == "42"
    assert Value.parse("{json-eval($.jobInfo.id)}").is_dynamic
    assert Value.parse("{p:x}", {"p": "urn:p"}).is_dynamic
    with pytest.raises(ConfigError, match=r"invalid value '\{//a\[\}'"):
        Value.parse("{//a[}")
