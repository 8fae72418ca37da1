"""Secrets never reach log output, reprs or formatted strings."""

from __future__ import annotations

import logging

import pytest

from sfbulk.errors import ApiError, ConfigError, ConfigErrors
from sfbulk.secrets import MASK, Redactor, Secret, install_log_redaction, is_secret_name, reveal


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
