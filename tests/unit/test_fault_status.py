"""The status of the engine's own fault answer, by error class (a proxy without a fault sequence)."""

from __future__ import annotations

import pytest

from sfbulk.connector.auth import TokenEndpointUnavailable
from sfbulk.engine.engine import default_fault_status
from sfbulk.errors import (
    ApiError,
    AuthError,
    BulkError,
    ConnectionClosedError,
    MediationFault,
    ParameterError,
    PayloadError,
    RegistryError,
    TransportError,
    TransportTimeout,
)
from sfbulk.transport import HostNotAllowedError


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (PayloadError("not XML"), 400),
        (ParameterError("init: parameter 'apiUrl' is required"), 400),
        (HostNotAllowedError("apiUrl refused: host 10.0.0.1 is not in the outbound allow-list"), 400),
        (RegistryError("registry key is 3799 characters long; the limit is 1024"), 400),
        (RegistryError("the registry folder cannot be written"), 500),
        (AuthError("token refresh failed: HTTP 400: invalid_grant"), 401),
        (TokenEndpointUnavailable("the token endpoint answered 503 through 8 attempts"), 503),
        (TransportError("connection refused"), 500),
        (TransportTimeout("no response from h within 2 s"), 500),
        (ConnectionClosedError("the connection is closed"), 500),
        (MediationFault("Sequence named Value {name ='null', keyValue ='x'} cannot be found"), 500),
        (ApiError(500, "UNKNOWN_EXCEPTION", "boom"), 500),
        (BulkError("the journal is closed"), 500),
        (KeyError("a bug"), 500),
    ],
)
def test_the_default_fault_status_follows_who_is_at_fault(error: BaseException, status: int) -> None:
    assert default_fault_status(error) == status
