"""The one scope table (sfbulk.message.scopes): every scope read the same way through every entry point.

The context (``get/set/remove_property``), the ``$prefix:`` variables and ``get-property(scope, name)``
all dispatch through ``SCOPE_TABLE``; this table-tests each scope through each of them, with a real
Engine and file registry.
"""

from __future__ import annotations

from typing import Any

import pytest

from sfbulk.engine.engine import Engine
from sfbulk.errors import ConfigError, ExpressionError, RegistryError
from sfbulk.expressions.expression import compile_expression
from sfbulk.message.context import MessageContext
from sfbulk.message.scopes import SCOPE_TABLE, SCOPES, SYSTEM_PROPERTIES, VARIABLE_SCOPES

#: scope -> (its ``$prefix:`` variable or None, whether get-property reads it, what expressions read when missing)
EXPECTED: dict[str, tuple[str | None, bool, Any]] = {
    "default": ("ctx", True, None),
    "transport": ("trp", True, None),
    "axis2": ("axis2", True, None),
    "axis2-client": (None, False, None),
    "operation": ("operation", True, None),
    "registry": (None, True, ""),
    "system": ("sys", True, ""),
    "func": ("func", True, None),
    "env": (None, True, ""),
}


@pytest.fixture
def engine(tmp_path):
    with Engine(registry=tmp_path / "registry") as eng:
        yield eng


@pytest.fixture
def ctx(engine) -> MessageContext:
    return MessageContext.from_http(
        method="POST",
        uri="/services/p",
        headers={"Content-Type": "application/xml"},
        body=b"<r/>",
        engine=engine,
    )


@pytest.fixture(autouse=True)
def _clean_system_properties():
    before = dict(SYSTEM_PROPERTIES)
    yield
    SYSTEM_PROPERTIES.clear()
    SYSTEM_PROPERTIES.update(before)


def via_variable(ctx: MessageContext, prefix: str, name: str) -> Any:
    return compile_expression(f"${prefix}:{name}").evaluate(ctx)


def via_get_property(ctx: MessageContext, scope: str, name: str) -> Any:
    return compile_expression(f"get-property('{scope}', '{name}')").evaluate(ctx)


def test_the_table_holds_exactly_the_scopes_synapse_has() -> None:
    assert set(SCOPE_TABLE) == set(EXPECTED)
    assert tuple(name for name, scope in SCOPE_TABLE.items() if scope.stored) == SCOPES
    for name, (prefix, in_get_property, missing) in EXPECTED.items():
        scope = SCOPE_TABLE[name]
        assert scope.get_property is in_get_property, name
        assert scope.missing == missing, name
        if prefix is not None:
            assert VARIABLE_SCOPES[prefix] is scope


@pytest.mark.parametrize("scope", SCOPES)
def test_a_stored_scope_reads_back_the_same_through_every_entry_point(
    ctx: MessageContext, scope: str
) -> None:
    prefix, in_get_property, missing = EXPECTED[scope]
    name = "sfbulkScopeTest"
    ctx.set_property(name, "v1", scope)
    assert ctx.get_property(name, scope) == "v1"
    if prefix is not None:
        assert via_variable(ctx, prefix, name) == "v1"
    if in_get_property:
        assert via_get_property(ctx, scope, name) == "v1"

    ctx.remove_property(name, scope)
    ctx.remove_property(name, scope)  # removing a missing name is a no-op
    assert ctx.get_property(name, scope) is None
    if prefix is not None:
        assert via_variable(ctx, prefix, name) == missing
    if in_get_property:
        assert via_get_property(ctx, scope, name) == missing


@pytest.mark.parametrize(
    ("scope", "value", "stored"),
    [
        ("default", True, True),  # kept as the value it is
        ("axis2", 3, 3),
        ("axis2-client", None, None),  # axis2-client stores even None
        ("operation", ["a"], ["a"]),
        ("transport", True, "true"),  # headers are text, written the Java way
        ("system", False, "false"),
        ("registry", True, "true"),
    ],
)
def test_what_each_scope_stores(ctx: MessageContext, scope: str, value: Any, stored: Any) -> None:
    ctx.set_property("k", value, scope)
    assert ctx.get_property("k", scope) == stored


def test_none_keeps_a_default_property_but_removes_an_axis2_or_operation_one(ctx: MessageContext) -> None:
    for scope in ("default", "axis2", "operation"):
        ctx.set_property("k", "old", scope)
        ctx.set_property("k", None, scope)
    assert ctx.get_property("k") == "old"
    assert ctx.get_property("k", "axis2") is None
    assert ctx.get_property("k", "operation") is None


def test_axis2_message_type_drags_content_type_along(ctx: MessageContext) -> None:
    ctx.set_property("messageType", "application/json", "axis2")
    assert ctx.get_property("ContentType", "axis2") == "application/json"
    assert ctx.get_property("Content-Type", "transport") == "application/json"
    assert ctx.is_built


def test_a_transport_header_set_by_a_mediator_goes_back_to_the_caller(engine) -> None:
    ctx = MessageContext.from_http(
        method="GET", uri="/services/p", headers={"X-Trace": "caller"}, engine=engine
    )
    assert ctx.to_http_response().header("X-Trace") is None  # the caller's own header is not echoed
    ctx.set_property("X-Trace", "mediator", "transport")
    assert ctx.to_http_response().header("X-Trace") == "mediator"
    ctx.remove_property("x-trace", "transport")  # any case
    assert ctx.get_property("X-Trace", "transport") is None


def test_func_reads_the_innermost_template_frame(ctx: MessageContext) -> None:
    assert via_variable(ctx, "func", "p") is None  # outside any template
    ctx.push_frame({"p": "outer"})
    ctx.push_frame({"p": "inner", "q": compile_expression("$ctx:fromCtx")})
    ctx.set_property("fromCtx", "evaluated")
    assert via_variable(ctx, "func", "p") == via_get_property(ctx, "func", "p") == "inner"
    assert via_variable(ctx, "func", "q") == "evaluated"  # a parameter given as an expression
    ctx.pop_frame()
    assert via_get_property(ctx, "func", "p") == "outer"


def test_env_reads_the_process_environment(ctx: MessageContext, monkeypatch) -> None:
    monkeypatch.setenv("SFBULK_SCOPE_TEST", "/x")
    assert via_get_property(ctx, "env", "SFBULK_SCOPE_TEST") == "/x"
    monkeypatch.delenv("SFBULK_SCOPE_TEST")
    assert via_get_property(ctx, "env", "SFBULK_SCOPE_TEST") == ""


@pytest.mark.parametrize("scope", ["func", "env", "file", "Default", "nope"])
def test_the_context_accepts_only_the_scopes_it_stores(ctx: MessageContext, scope: str) -> None:
    for call in (
        lambda: ctx.get_property("k", scope),
        lambda: ctx.set_property("k", "v", scope),
        lambda: ctx.remove_property("k", scope),
    ):
        with pytest.raises(ValueError, match="unknown property scope .*expected one of default, transport"):
            call()


def test_get_property_refuses_the_scopes_it_does_not_read(ctx: MessageContext) -> None:
    with pytest.raises(ExpressionError, match="scope 'axis2-client' is not supported"):
        compile_expression("get-property('axis2-client', 'k', 'yyyy')").evaluate(ctx)
    with pytest.raises(ConfigError, match="scope 'file' is not supported"):
        compile_expression("get-property('file', 'k')")
    # two arguments whose first is not a scope are (name, dateFormat): a default-scope read
    ctx.set_property("axis2-client", "named like a scope")
    assert compile_expression("get-property('axis2-client', 'yyyy')").evaluate(ctx) == "named like a scope"


def test_registry_scope_without_a_registry() -> None:
    ctx = MessageContext()
    assert ctx.get_property("k", "registry") is None
    assert via_get_property(ctx, "registry", "k") == ""
    with pytest.raises(RegistryError, match="no registry is configured"):
        ctx.set_property("k", "v", "registry")
    with pytest.raises(RegistryError, match="no registry is configured"):
        ctx.remove_property("k", "registry")
