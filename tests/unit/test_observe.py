"""The counting seam's pure parts: Sforce-Limit-Info parsing, grant types, bounded hosts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sfbulk import observe


@pytest.fixture
def recorded() -> Iterator[list[tuple[Any, ...]]]:
    """A sink that records every report (restores whatever sink the process had)."""
    calls: list[tuple[Any, ...]] = []

    class Recorder:
        def api_usage(self, usage: observe.ApiUsage) -> None:
            calls.append(("usage", usage.host, usage.used, usage.limit))

        def grant(self, grant_type: str, outcome: str) -> None:
            calls.append(("grant", grant_type, outcome))

        def batch(self, pipeline: str, outcome: str, processed: int, failed: int) -> None:
            calls.append(("batch", pipeline, outcome, processed, failed))

    previous = observe._sink
    observe.reset()
    observe.install(Recorder())
    try:
        yield calls
    finally:
        observe.install(previous)
        observe.reset()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("api-usage=25/15000", (25, 15000)),
        ("api-usage=18/5000; per-app-api-usage=17/250(appName=sample-app)", (18, 5000)),
        ("per-app-api-usage=17/250(appName=x); api-usage=3/100", (3, 100)),
        ("API-Usage = 7 / 1000", (7, 1000)),
        ("per-app-api-usage=17/250(appName=x)", None),
        ("api-usage=abc/100", None),
        ("", None),
    ],
)
def test_limit_info_header_is_parsed_as_salesforce_writes_it(header: str, expected: Any) -> None:
    assert observe.parse_limit_info(header) == expected


def test_the_last_usage_is_kept_per_host_and_reported(recorded: list[tuple[Any, ...]]) -> None:
    observe.limit_info("https://a.my.salesforce.com/services/data/v62.0/jobs", "api-usage=5/15000")
    observe.limit_info("https://B.my.salesforce.com:443/x", "api-usage=9/100000")
    observe.limit_info("https://a.my.salesforce.com/y", None)  # an answer without the header changes nothing
    observe.limit_info("https://a.my.salesforce.com/y", "api-usage=6/15000")
    last = observe.last_api_usage()
    assert last is not None and (last.host, last.used, last.limit) == ("a.my.salesforce.com", 6, 15000)
    assert {h: (u.used, u.limit) for h, u in observe.api_usage_by_host().items()} == {
        "a.my.salesforce.com": (6, 15000),
        "b.my.salesforce.com": (9, 100000),
    }
    assert recorded == [
        ("usage", "a.my.salesforce.com", 5, 15000),
        ("usage", "b.my.salesforce.com", 9, 100000),
        ("usage", "a.my.salesforce.com", 6, 15000),
    ]
    assert last.describe() == "6 of 15,000 API requests used (0.0%) at a.my.salesforce.com"


def test_no_more_than_max_hosts_are_tracked(recorded: list[tuple[Any, ...]]) -> None:
    for i in range(observe.MAX_HOSTS + 10):
        observe.limit_info(f"https://h{i}.example.com/", "api-usage=1/10")
    assert len(observe.api_usage_by_host()) == observe.MAX_HOSTS
    assert len(recorded) == observe.MAX_HOSTS
    observe.limit_info("https://h0.example.com/", "api-usage=2/10")  # a known host is still updated
    assert observe.api_usage_by_host()["h0.example.com"].used == 2


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"grant_type=refresh_token&refresh_token=x&client_id=y", "refresh_token"),
        ("grant_type=password&username=u", "password"),
        (b"grant_type=client_credentials", "client_credentials"),
        (b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=e30", "jwt_bearer"),
        (b"grant_type=made-up-by-a-caller", "other"),
        (b'{"grant_type": "refresh_token"}', None),  # not a form: not a token grant
        (b"<createJob/>", None),
        (None, None),
        (iter([b"grant_type=password"]), None),  # a streamed body is never a grant
    ],
)
def test_grant_types_are_mapped_onto_a_fixed_set(body: Any, expected: str | None) -> None:
    assert observe.grant_type_of(body) == expected


def test_grants_and_batches_reach_the_sink(recorded: list[tuple[Any, ...]]) -> None:
    observe.grant_attempt(b"grant_type=refresh_token&refresh_token=secret", "retried")
    observe.grant_attempt(b"not=a-grant", "success")
    observe.batch_done("load", "Completed", 10, 2)
    observe.batch_done("load", "Failed", 0, 0)
    observe.batch_done("extract", "Not Processed", 0, 0)
    assert recorded == [
        ("grant", "refresh_token", "retried"),
        ("batch", "load", "processed", 10, 2),
        ("batch", "load", "failed", 0, 0),
        ("batch", "extract", "not_processed", 0, 0),
    ]
    assert "secret" not in repr(recorded)


def test_an_answer_overtaken_by_a_later_one_does_not_lower_the_count(recorded: list[tuple[Any, ...]]) -> None:
    observe.limit_info("https://a.example.com/1", "api-usage=10/100")
    observe.limit_info("https://a.example.com/2", "api-usage=9/100")  # sent earlier, read later
    observe.limit_info("https://a.example.com/3", "api-usage=11/100")
    assert [call[2] for call in recorded] == [10, 11]
    last = observe.last_api_usage()
    assert last is not None and last.used == 11
    # a lower count well after the last one is Salesforce's rolling window moving on: it is taken
    observe._usage["a.example.com"] = observe.ApiUsage(
        "a.example.com", 11, 100, last.seen - observe.RACE_SECONDS - 1
    )
    observe.limit_info("https://a.example.com/4", "api-usage=4/100")
    assert observe.api_usage_by_host()["a.example.com"].used == 4
