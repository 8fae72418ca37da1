"""filter, switch, sequences, respond/drop/loopback/send and fault handling through the Engine:
vectors F1-F7, S1-S3, FC1-FC6, FH1-FH3 (the HTTP ones live in test_mediators_http.py)."""

from __future__ import annotations

import logging
import re

import pytest

from sfbulk.errors import ConfigError, MediationFault, UnknownProxyError
from sfbulk.expressions.expression import compile_expression as X
from sfbulk.mediators import (
    DropMediator,
    FilterMediator,
    LogMediator,
    LogProperty,
    LoopbackMediator,
    PayloadArg,
    PayloadFactoryMediator,
    PropertyMediator,
    Proxy,
    RespondMediator,
    SendMediator,
    Sequence,
    SequenceReference,
    SwitchCase,
    SwitchMediator,
)
from sfbulk.message.context import MessageContext


class Mark:
    """Records that it ran (a test probe, not a product mediator)."""

    def __init__(self, name: str, runs: list[str]) -> None:
        self.name, self.runs = name, runs

    def mediate(self, ctx: MessageContext) -> bool:
        self.runs.append(self.name)
        return True


def ctx_with(**props) -> MessageContext:
    ctx = MessageContext.from_http(
        method="POST", uri="/services/StockQuote", headers=[("Content-Type", "application/xml")], body=b"<a/>"
    )
    ctx.properties.update(props)
    return ctx


def branch(mediator_factory, ctx: MessageContext) -> list[str]:
    runs: list[str] = []
    mediator_factory(runs).mediate(ctx)
    return runs


def regex_filter(source: str, regex: str):
    return lambda runs: FilterMediator(
        source=X(source), regex=re.compile(regex), then=[Mark("then", runs)], else_=[Mark("else", runs)]
    )


@pytest.mark.parametrize(
    ("source", "regex", "props", "expected"),
    [
        ("$ctx:ct", "text/csv", {"ct": "text/csv"}, "then"),  # F1
        ("$ctx:ct", "text/csv", {"ct": "text/csv; charset=UTF-8"}, "else"),  # F2
        ("boolean($ctx:x)", "false", {}, "then"),  # F3
        ("boolean($ctx:x)", "false", {"x": ""}, "then"),  # F3
        ("$ctx:r=''", "true", {"r": ""}, "then"),  # F4
        ("$ctx:r=''", "true", {}, "else"),  # F4: null = '' is false
        ("get-property('To')", ".*/StockQuote.*", {}, "then"),  # F7
        ("$ctx:missing", ".*", {}, "else"),  # null source never matches
    ],
)
def test_filter_regex_vectors(source, regex, props, expected):
    assert branch(regex_filter(source, regex), ctx_with(**props)) == [expected]


@pytest.mark.parametrize(("status", "expected"), [(404, ["then"]), (201, ["else"]), (None, ["else"])])
def test_f5_http_sc_regex(status, expected):
    ctx = ctx_with()
    if status is not None:
        ctx.axis2["HTTP_SC"] = status
    assert branch(regex_filter("$axis2:HTTP_SC", "^[^2][0-9][0-9]"), ctx) == expected


def test_f6_xpath_filter_and_missing_else():
    ctx = ctx_with(a="urn:y")

    def make(runs):
        return FilterMediator(
            xpath=X("get-property('a')='urn:x' or get-property('a')='urn:y'"), then=[Mark("then", runs)]
        )

    assert branch(make, ctx) == ["then"]
    assert branch(make, ctx_with(a="urn:z")) == []  # no branch, no else: continue
    assert FilterMediator(xpath=X("false()"), then=[DropMediator()]).mediate(ctx_with()) is True


def test_filter_branch_by_sequence_key(engine):
    runs: list[str] = []
    engine.add_sequence(Sequence("yes", [Mark("yes", runs)]))
    ctx = ctx_with()
    ctx.engine = engine
    FilterMediator(xpath=X("true()"), then_sequence="yes", else_sequence="no").mediate(ctx)
    assert runs == ["yes"]
    with pytest.raises(MediationFault, match="keyValue ='no'"):
        FilterMediator(xpath=X("false()"), then_sequence="yes", else_sequence="no").mediate(ctx)
    with pytest.raises(ConfigError):
        FilterMediator(source=X("$ctx:a"))


def switch(runs, default=True):
    cases = [
        SwitchCase(re.compile("urn:createJob"), (Mark("createJob", runs),)),
        SwitchCase(re.compile("urn:createJobToUploadBatchFile"), (Mark("upload", runs),)),
        SwitchCase(re.compile("401"), (Mark("401", runs),)),
        SwitchCase(re.compile("4.."), (Mark("4xx", runs),)),
    ]
    return SwitchMediator(
        X("get-property('transportAction')"), cases, [Mark("default", runs)] if default else None
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("urn:createJobToUploadBatchFile", ["upload"]),  # S1
        (None, ["default"]),  # S2
        ("401", ["401"]),  # S3: first match only
        ("404", ["4xx"]),
        ("zzz", ["default"]),
    ],
)
def test_switch_vectors(value, expected):
    ctx = ctx_with() if value is None else ctx_with(transportAction=value)
    assert branch(switch, ctx) == expected


def test_switch_without_default_continues():
    assert switch([], default=False).mediate(ctx_with(transportAction="nothing")) is True


# --- flows through the engine -------------------------------------------------------------------


def run(engine, in_mediators, *, body=b"<a/>", out=None, fault=None, on_error=None, headers=None):
    engine.add_proxy(
        Proxy(
            "P",
            in_sequence=Sequence(None, in_mediators, on_error=on_error),
            out_sequence=out,
            fault_sequence=fault,
        )
    )
    hdrs = (
        headers
        if headers is not None
        else [("Content-Type", "application/xml"), ("Host", "localhost:8280"), ("X-Custom", "1")]
    )
    return engine.handle("P", method="POST", uri="/services/P", headers=hdrs, body=body)


def test_fc1_respond_stops_and_echoes_no_inbound_header(engine, caplog):
    caplog.set_level(logging.INFO, logger="sfbulk.mediation")
    result = run(
        engine,
        [
            PayloadFactoryMediator('<ok xmlns=""/>'),
            RespondMediator(),
            LogMediator(level="custom", properties=[LogProperty("ran", "yes")]),
        ],
    )
    assert (result.status, result.body) == (200, b"<ok/>")
    assert result.header("Content-Type").startswith("application/xml")
    assert result.header("X-Custom") is None  # inbound headers are not echoed (a deviation: docs/server.md)
    assert not [r for r in caplog.records if "ran = yes" in r.getMessage()]


def test_fc2_http_sc_overrides_and_unbuilt_body_streams(engine):
    result = run(engine, [PropertyMediator("HTTP_SC", value="404", scope="axis2"), RespondMediator()])
    assert (result.status, result.body) == (404, b"<a/>")


@pytest.mark.parametrize("mediators", [[DropMediator()], [PropertyMediator("x", value="1")], []])
def test_fc3_drop_or_falling_off_the_end_is_202(engine, mediators):
    result = run(engine, mediators)
    assert (result.status, result.body) == (202, b"")


def test_fc4_loopback_runs_the_out_sequence(engine):
    out = Sequence(None, [PropertyMediator("x", value="1"), SendMediator()])
    result = run(engine, [LoopbackMediator(), DropMediator()], out=out)
    assert (result.status, result.body) == (200, b"<a/>")


def test_fc5_false_propagates_out_of_a_referenced_sequence(engine, caplog):
    caplog.set_level(logging.INFO, logger="sfbulk.mediation")
    engine.add_sequence(Sequence("s1", [RespondMediator()]))
    result = run(
        engine, [SequenceReference("s1"), LogMediator(level="custom", properties=[LogProperty("ran", "yes")])]
    )
    assert (result.status, result.body) == (200, b"<a/>")
    assert not [r for r in caplog.records if "ran = yes" in r.getMessage()]


def test_fc6_no_branch_continues(engine):
    result = run(engine, [FilterMediator(xpath=X("false()"), then=[DropMediator()]), RespondMediator()])
    assert (result.status, result.body) == (200, b"<a/>")


ERR_SEQ = Sequence(
    "errSeq",
    [
        PayloadFactoryMediator(
            '<e xmlns="">$1</e>', args=[PayloadArg(expression=X("get-property('ERROR_MESSAGE')"))]
        ),
        RespondMediator(),
    ],
)


def test_fh1_on_error_sequence_answers(engine):
    engine.add_sequence(ERR_SEQ)
    seen: dict = {}

    class Capture:
        def mediate(self, ctx):
            seen.update(ctx.properties)
            return True

    engine.add_sequence(Sequence("errSeq", [Capture(), *ERR_SEQ.mediators]))
    result = run(engine, [SequenceReference("nope")], on_error="errSeq")
    assert result.status == 200
    assert result.body == b"<e>Sequence named Value {name ='null', keyValue ='nope'} cannot be found</e>"
    assert seen["ERROR_CODE"] == 0 and "Traceback" not in str(seen["ERROR_DETAIL"])


def test_fh2_error_code_set_earlier_is_kept(engine):
    seen: dict = {}

    class Capture:
        def mediate(self, ctx):
            seen.update(ctx.properties)
            return True

    engine.add_sequence(Sequence("errSeq", [Capture(), RespondMediator()]))
    run(engine, [PropertyMediator("ERROR_CODE", value="X1"), SequenceReference("nope")], on_error="errSeq")
    assert seen["ERROR_CODE"] == "X1" and "ERROR_MESSAGE" not in seen


def test_fh3_global_fault_sequence_log_and_drop_gives_202(engine, caplog):
    caplog.set_level(logging.INFO, logger="sfbulk.mediation")
    engine.add_sequence(
        Sequence(
            "fault",
            [
                LogMediator(
                    level="full", properties=[LogProperty("ERROR_CODE", expression=X("$ctx:ERROR_CODE"))]
                ),
                DropMediator(),
            ],
        )
    )
    result = run(engine, [SequenceReference("nope")])
    assert (result.status, result.body) == (202, b"")
    assert any("ERROR_CODE = 0" in r.getMessage() for r in caplog.records)


def test_proxy_fault_sequence_wins_over_global_and_nested_handler_failure(engine):
    engine.add_sequence(Sequence("fault", [PayloadFactoryMediator('<global xmlns=""/>'), RespondMediator()]))
    result = run(
        engine,
        [SequenceReference("nope")],
        fault=Sequence(None, [PayloadFactoryMediator('<proxy xmlns=""/>'), RespondMediator()]),
    )
    assert result.body == b"<proxy/>"
    engine.proxies.clear()
    # The onError handler itself fails: the next one on the stack (the proxy's) runs.
    engine.add_sequence(Sequence("broken", [SequenceReference("also-missing")]))
    result = run(
        engine,
        [SequenceReference("nope")],
        on_error="broken",
        fault=Sequence(None, [PayloadFactoryMediator('<proxy xmlns=""/>'), RespondMediator()]),
    )
    assert result.body == b"<proxy/>"


def test_default_fault_answer_is_a_small_xml_fault(engine):
    result = run(engine, [SequenceReference("nope")])
    assert result.status == 500
    assert (
        result.body
        == b"<fault><code>0</code><message>Sequence named Value {name ='null', keyValue ='nope'} cannot be found</message></fault>"
    )
    result = run(engine, [PropertyMediator("a", expression=X("//x"))], body=b"<broken")
    assert (
        result.status == 400 and b"<code>601000</code>" in result.body and b"not well-formed" in result.body
    )


def test_unexpected_exception_becomes_a_fault_without_traceback(engine, caplog):
    caplog.set_level(logging.DEBUG, logger="sfbulk.engine.engine")

    class Boom:
        def mediate(self, ctx):
            raise RuntimeError("secret internals")

    result = run(engine, [Boom()])
    assert result.status == 500
    assert b"Runtime error occurred while mediating the message" in result.body
    assert b"secret internals" not in result.body and b"Traceback" not in result.body
    engine_records = [r for r in caplog.records if r.name == "sfbulk.engine.engine"]
    errors = [r for r in engine_records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None and "RuntimeError" in errors[0].getMessage()
    debug = [r for r in engine_records if r.levelno == logging.DEBUG]
    assert debug and "Traceback (most recent call last)" in debug[0].getMessage()


def test_on_error_is_popped_after_success(engine):
    runs: list[str] = []
    engine.add_sequence(Sequence("inner-err", [Mark("inner-err", runs), RespondMediator()]))
    engine.add_sequence(Sequence("inner", [PropertyMediator("x", value="1")], on_error="inner-err"))
    engine.add_sequence(Sequence("outer-err", [Mark("outer-err", runs), RespondMediator()]))
    run(engine, [SequenceReference("inner"), SequenceReference("nope")], on_error="outer-err")
    assert runs == ["outer-err"]


def test_a_missing_on_error_sequence_is_named_with_its_owner_in_the_warning(engine, caplog):
    """Synapse logs the miss on every message and goes on; the warning names the sequence that
    refers to it, or says it is an inline one (never a Python ``None``)."""
    caplog.set_level(logging.WARNING, logger="sfbulk.mediation")
    engine.add_sequence(Sequence("named", [PropertyMediator("x", value="1")], on_error="lost-named"))
    result = run(engine, [SequenceReference("named"), RespondMediator()], on_error="lost-inline")
    assert result.status == 200
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "onError sequence 'lost-inline' of an inline sequence cannot be found",
        "onError sequence 'lost-named' of sequence 'named' cannot be found",
    ]


def test_unknown_proxy_and_engine_mediate(engine):
    with pytest.raises(UnknownProxyError) as info:
        engine.handle("nope", method="GET", uri="/services/nope")
    assert isinstance(info.value, LookupError)
    engine.add_proxy(Proxy("Q", in_sequence=Sequence(None, [RespondMediator()])))
    ctx = MessageContext.from_http(method="GET", uri="/services/Q", headers=[])
    result = engine.mediate("Q", ctx)
    assert result.status == 200 and ctx.properties["proxy.name"] == "Q"


def test_in_sequence_by_key(engine):
    engine.add_sequence(
        Sequence("main", [PropertyMediator("HTTP_SC", value="201", scope="axis2"), RespondMediator()])
    )
    engine.add_proxy(Proxy("K", in_sequence="main"))
    assert engine.handle("K", method="POST", uri="/services/K", headers=[], body=b"").status == 201
    engine.add_proxy(Proxy("L", in_sequence="missing"))
    assert engine.handle("L", method="POST", uri="/services/L", headers=[], body=b"").status == 500
