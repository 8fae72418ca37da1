"""The exception tree by layer: what each layer's error is and is not, and the ERROR_CODE it carries.

The Synapse ERROR_CODE is an attribute (``error_code``; ``code``/``detail`` on ``CodedError``s), so
a layer's errors never inherit from another layer's only to get a code, and the engine still maps
each error to the code, message and detail it always did.
"""

from __future__ import annotations

import pytest

from sfbulk.connector.auth import TokenEndpointUnavailable
from sfbulk.engine.engine import fault_fields
from sfbulk.errors import (
    ApiError,
    AuthError,
    BulkError,
    BulkInputError,
    BulkInterrupted,
    CodedError,
    ConfigError,
    ConfigErrors,
    ConnectError,
    ConnectionClosedError,
    ExpressionError,
    MediationFault,
    ParameterError,
    PayloadError,
    PollTimeout,
    RegistryError,
    SfBulkError,
    TimeoutError_,
    TransportError,
    TransportTimeout,
    UnknownProxyError,
)
from sfbulk.mediators.api import NoApiMatch
from sfbulk.transport import HostNotAllowedError

#: The layer branches directly under SfBulkError; no branch is a subclass of another.
LAYERS = [ConfigError, MediationFault, TransportError, AuthError, RegistryError, ApiError, BulkError]

#: (error class, the layer branch it belongs to)
MEMBERS = [
    (ConfigErrors, ConfigError),
    (ExpressionError, MediationFault),
    (PayloadError, MediationFault),
    (ParameterError, MediationFault),
    (HostNotAllowedError, MediationFault),
    (ConnectError, TransportError),
    (TransportTimeout, TransportError),
    (ConnectionClosedError, TransportError),
    (TokenEndpointUnavailable, AuthError),
    (BulkInputError, BulkError),
    (PollTimeout, BulkError),
    (BulkInterrupted, BulkError),
]


@pytest.mark.parametrize("layer", LAYERS, ids=lambda c: c.__name__)
def test_each_layer_is_a_direct_branch_of_sfbulkerror_and_of_no_other_layer(layer: type) -> None:
    assert layer.__mro__[1] is SfBulkError
    others = [other for other in LAYERS if other is not layer]
    assert [other.__name__ for other in others if issubclass(layer, other)] == []


@pytest.mark.parametrize(("error", "layer"), MEMBERS, ids=lambda c: c.__name__)
def test_each_error_belongs_to_exactly_one_layer(error: type, layer: type) -> None:
    assert [branch for branch in LAYERS if issubclass(error, branch)] == [layer]


@pytest.mark.parametrize(
    "error",
    [
        TransportError,
        ConnectError,
        TransportTimeout,
        ConnectionClosedError,
        AuthError,
        RegistryError,
        BulkError,
        BulkInputError,
        ApiError,
        ConfigError,
    ],
)
def test_no_error_outside_the_mediation_layer_is_a_mediation_fault(error: type) -> None:
    assert not issubclass(error, MediationFault)


def test_a_bulk_user_catching_transport_errors_does_not_catch_mediation_faults() -> None:
    with pytest.raises(ParameterError):
        try:
            raise ParameterError("getJob: parameter 'jobId' is required")
        except TransportError:
            pytest.fail("a ParameterError was caught as a TransportError")


def test_lookups_stay_lookup_errors() -> None:
    assert issubclass(UnknownProxyError, LookupError) and issubclass(UnknownProxyError, SfBulkError)
    assert issubclass(NoApiMatch, LookupError) and issubclass(NoApiMatch, SfBulkError)


def test_the_old_timeout_name_is_an_alias() -> None:
    assert TimeoutError_ is TransportTimeout


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (MediationFault, 0),
        (ExpressionError, 0),
        (PayloadError, 601000),
        (ParameterError, 500101),
        (HostNotAllowedError, 700403),
        (TransportError, 101500),
        (ConnectError, 101503),
        (TransportTimeout, 101504),
        (ConnectionClosedError, 101505),
        (AuthError, 700101),
        (TokenEndpointUnavailable, 700101),
        (RegistryError, 700201),
        (ApiError, 700301),
        (ConfigError, 0),
        (BulkError, 0),
        (BulkInputError, 0),
    ],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_the_error_code_is_a_class_attribute(error: type[SfBulkError], code: int) -> None:
    assert error.error_code == code


def test_coded_errors_carry_code_and_detail_of_their_own() -> None:
    assert [c.__name__ for c in (MediationFault, TransportError) if not issubclass(c, CodedError)] == []
    assert not issubclass(AuthError, CodedError) and not issubclass(BulkError, CodedError)
    fault = MediationFault("custom", code="BULK-7", detail="more")
    assert (fault.code, fault.message, fault.detail) == ("BULK-7", "custom", "more")
    refused = ConnectError("cannot connect to h:1")
    assert (refused.code, refused.detail, str(refused)) == (101503, None, "cannot connect to h:1")


@pytest.mark.parametrize(
    ("error", "fields"),
    [
        (
            ConnectError("cannot connect to h:1 (connection refused)"),
            (
                101503,
                "cannot connect to h:1 (connection refused)",
                "cannot connect to h:1 (connection refused)",
            ),
        ),
        (
            TransportTimeout("no response from h within 2 s", detail="line1\nline2"),
            (101504, "no response from h within 2 s", "line1 line2"),
        ),
        (
            ParameterError("init: apiUrl is required\nsecond line"),
            (500101, "init: apiUrl is required", "init: apiUrl is required"),
        ),
        (MediationFault("", code=42), (42, "MediationFault", "MediationFault")),
        (
            AuthError("token refresh failed: HTTP 400: invalid_grant"),
            (
                700101,
                "token refresh failed: HTTP 400: invalid_grant",
                "token refresh failed: HTTP 400: invalid_grant",
            ),
        ),
        (
            ApiError(500, "UNKNOWN_EXCEPTION", "boom", context="getJob"),
            (
                700301,
                "getJob: HTTP 500: UNKNOWN_EXCEPTION: boom",
                "getJob: HTTP 500: UNKNOWN_EXCEPTION: boom",
            ),
        ),
        (
            ConfigError("unknown key", file="flow.yaml", line=3),
            (0, "flow.yaml:3: unknown key", "flow.yaml:3: unknown key"),
        ),
        (
            KeyError("a bug"),
            (
                0,
                "Runtime error occurred while mediating the message",
                "Runtime error occurred while mediating the message: KeyError",
            ),
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "",
)
def test_the_engine_maps_each_layer_to_the_fault_fields_it_always_did(
    error: BaseException, fields: tuple
) -> None:
    assert fault_fields(error) == fields
