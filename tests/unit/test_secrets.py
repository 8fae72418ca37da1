"""Secrets never reach log output, reprs or formatted strings."""

from __future__ import annotations

import gc
import logging

import pytest

from sfbulk.errors import ApiError, ConfigError, ConfigErrors
from sfbulk.secrets import (
    MASK,
    Redactor,
    Secret,
    default_redactor,
    install_log_redaction,
    is_secret_name,
    redact,
    reveal,
)


def test_secret_masks_every_printed_form() -> None:
    token = Secret("00D000000000001!AQ4AQ.very-secret-token")
    assert "very-secret" not in repr(token)
    assert "very-secret" not in str(token)
    assert "very-secret" not in f"{token}"
    assert "very-secret" not in "%s" % token  # noqa: UP031 - the %-format path is what is tested
    assert reveal(token) == "00D000000000001!AQ4AQ.very-secret-token"
    assert reveal("plain") == "plain" and reveal(None) is None
    assert Secret("a-value-1") == Secret("a-value-1") and Secret("a-value-1") != Secret("a-value-2")


@pytest.mark.parametrize(
    "text, secret",
    [
        ("<createJob><accessToken>AT-123456</accessToken></createJob>", "AT-123456"),
        ("<n:refreshToken xmlns:n='urn:x'>RT-abcdef</n:refreshToken>", "RT-abcdef"),
        ('{"access_token": "00Dxx!tok-999", "instance_url": "https://x"}', "00Dxx!tok-999"),
        ("grant_type=refresh_token&refresh_token=RT-zzz999&client_secret=CS-777777", "RT-zzz999"),
        ("grant_type=refresh_token&refresh_token=RT-zzz999&client_secret=CS-777777", "CS-777777"),
        ("headers: {'X-SFDC-Session': 'SID-555555', 'Accept': 'x'}", "SID-555555"),
        ("Authorization: Bearer-ish-abcdef", "Bearer-ish-abcdef"),
    ],
)
def test_redactor_masks_values_stored_under_secret_names(text: str, secret: str) -> None:
    cleaned = Redactor().redact(text)
    assert secret not in cleaned
    assert MASK in cleaned


def test_redactor_masks_registered_values_anywhere_and_keeps_other_text() -> None:
    redactor = Redactor()
    redactor.add("tok-0123456789")
    redactor.add("abc")  # too short to mask by value: would mangle ordinary text
    cleaned = redactor.redact("calling /job with tok-0123456789 at abc")
    assert cleaned == "calling /job with *** at abc"


def test_a_live_secret_is_masked_however_many_others_come_and_go() -> None:
    redactor = Redactor()
    redactor.recent_limit = 8
    assert redactor.hold("long-lived-client-secret")
    for i in range(100):
        value = f"per-request-token-{i:04d}"
        redactor.hold(value)
        assert redactor.redact(f"sent {value}") == "sent ***"
        redactor.release(value)
    assert len(redactor) == 1 + 8  # the live one and the window of released ones: bounded
    assert redactor.redact("with long-lived-client-secret") == "with ***"
    assert redactor.redact("per-request-token-0099") == "***"  # released last: still masked
    assert redactor.redact("per-request-token-0000") == "per-request-token-0000"  # long gone


def test_a_value_held_twice_stays_masked_until_both_holders_are_gone() -> None:
    redactor = Redactor()
    redactor.recent_limit = 0
    redactor.hold("shared-token-value")
    redactor.hold("shared-token-value")
    redactor.release("shared-token-value")
    assert redactor.redact("shared-token-value") == "***"
    redactor.release("shared-token-value")
    assert redactor.redact("shared-token-value") == "shared-token-value"
    redactor.release("shared-token-value")  # one release too many is harmless
    assert len(redactor) == 0


def test_a_release_while_the_redactor_is_busy_never_waits_and_is_applied_next() -> None:
    """Finalizers run wherever the garbage collector runs, also inside the redactor's own locked
    code in the same thread: a release then must not wait for the lock (it would wait for ever)."""
    redactor = Redactor()
    redactor.recent_limit = 0
    redactor.hold("value-freed-by-a-finalizer")
    with redactor._lock:  # the redactor busy, as when a collection runs inside hold() or redact()
        redactor.release("value-freed-by-a-finalizer")  # returns at once
    assert redactor.redact("value-freed-by-a-finalizer") == "value-freed-by-a-finalizer"
    assert len(redactor) == 0


def test_the_longest_secret_is_masked_first() -> None:
    redactor = Redactor()
    redactor.add("token-abc")
    redactor.add("token-abc-and-more")
    assert redactor.redact("x token-abc-and-more y token-abc") == "x *** y ***"


def test_secrets_register_for_their_lifetime_and_stay_bounded() -> None:
    """Every Secret holds its value in the process-wide redactor only while it is alive."""
    kept = Secret("a-secret-kept-alive-0001")
    gc.collect()  # earlier tests' garbage released now, not in the middle of what is checked
    before = len(default_redactor)
    for i in range(3 * Redactor.recent_limit):
        transient = Secret(f"transient-secret-{i:05d}")
        assert redact(f"<x>{transient.reveal()}</x>") == f"<x>{MASK}</x>"
        del transient
    assert redact(f"transient-secret-{3 * Redactor.recent_limit - 1:05d}") == MASK  # just released
    assert redact("transient-secret-00000") == "transient-secret-00000"  # released long ago
    assert redact(kept.reveal()) == MASK  # alive all along: still masked
    gc.collect()
    assert len(default_redactor) <= before + Redactor.recent_limit


def test_secret_names_are_case_insensitive() -> None:
    assert is_secret_name("ACCESSTOKEN") and is_secret_name("x-sfdc-session")
    assert not is_secret_name("jobId")


def test_log_records_of_the_sfbulk_tree_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    install_log_redaction()
    secret = Secret("refresh-token-for-log-test-42")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("sfbulk.test").debug("refreshing with %s", reveal(secret))
        logging.getLogger("sfbulk.test").debug("body <clientSecret>%s</clientSecret>", "cs-9876543210")
    text = caplog.text
    assert "refresh-token-for-log-test-42" not in text
    assert "cs-9876543210" not in text
    assert text.count(MASK) == 2


def test_error_messages_carry_location() -> None:
    error = ConfigError("'name' is required", file="flows.yaml", line=12, field="proxies.p.inSequence[3]")
    assert str(error) == "flows.yaml:12: proxies.p.inSequence[3]: 'name' is required"
    both = ConfigErrors([error, ConfigError("bad", file="a.xml", line=2)])
    assert "2 configuration errors" in str(both) and "a.xml:2: bad" in str(both)
    api = ApiError(400, "InvalidJob", "Invalid job id: INVALID", context="getJob")
    assert str(api) == "getJob: HTTP 400: InvalidJob: Invalid job id: INVALID"
