"""XPath expressions evaluated from many threads at once: one lxml evaluator per thread, right answers.

An ``etree.XPath`` object serialises its calls on an internal lock; sharing one between the server's
worker threads made them queue on it (docs/benchmarks.md, server section).
"""

from __future__ import annotations

import threading

from sfbulk.expressions import expression as expressions
from sfbulk.expressions.expression import compile_expression
from sfbulk.message.context import MessageContext

THREADS = 6
ROUNDS = 200


def _ctx(i: int) -> MessageContext:
    body = f"<r><apiUrl>u{i}</apiUrl></r>".encode()
    ctx = MessageContext.from_http(
        method="POST", uri="/services/P", headers=[("Content-Type", "text/xml")], body=body
    )
    ctx.set_property("v", str(i))
    return ctx


def test_each_thread_compiles_once_and_gets_its_own_answers(monkeypatch) -> None:
    compiled: list[str] = []
    real = expressions._XPath
    lock = threading.Lock()

    def counting(*args, **kwargs):
        with lock:
            compiled.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(expressions, "_XPath", counting)
    expr = compile_expression("concat(//apiUrl/text(), '/', $ctx:v, '/', get-property('v'))")
    assert len(compiled) == 1
    evaluators: dict[int, object] = {}  # kept alive, so no two can share an id()
    wrong: list[str] = []
    gate = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        gate.wait()
        for r in range(ROUNDS):
            i = n * 10_000 + r
            got = expr.string_value(_ctx(i))
            if got != f"u{i}/{i}/{i}":
                wrong.append(got)
        evaluators[n] = expr._evaluator()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not wrong, wrong[:3]
    assert len(evaluators) == THREADS
    assert len({id(e) for e in evaluators.values()}) == THREADS  # no evaluator shared between threads
    assert len(compiled) == 1 + THREADS  # once at compile time, then once per evaluating thread
    assert expr.string_value(_ctx(7)) == "u7/7/7"  # the compiling thread still uses its first evaluator
    assert len(compiled) == 1 + THREADS
