"""Pure parts of sfbulk.server.serving: limit validation, the fd-limit fit, the waitress log filter."""

from __future__ import annotations

import logging
import resource

import pytest

from sfbulk.server.serving import ServerLimits, _WaitressLogFilter, raise_fd_limit


@pytest.mark.parametrize("field", ["header_timeout", "body_timeout", "idle_timeout"])
def test_timeouts_must_be_positive(field):
    with pytest.raises(ValueError, match=field):
        ServerLimits(**{field: 0})


def test_limits_refuse_impossible_caps():
    with pytest.raises(ValueError, match="max_connections"):
        ServerLimits(max_connections=0)
    with pytest.raises(ValueError, match="max_header_bytes"):
        ServerLimits(max_header_bytes=100)


def test_a_cap_beyond_the_hard_fd_limit_is_fitted_and_logged(caplog):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard open-file limit on this machine")
    with caplog.at_level(logging.WARNING, logger="sfbulk.server.app"):
        fitted = raise_fd_limit(hard * 10)
    assert fitted < hard
    assert "--max-connections" in caplog.text and "ulimit -n" in caplog.text
    assert raise_fd_limit(10) == 10


def _record(name: str, msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)


def test_waitress_lines_are_clipped_and_queue_warnings_rate_limited():
    keep = _WaitressLogFilter()
    long_line = _record("waitress", "Client disconnected while serving %s", "/" + "a" * 5000)
    assert keep.filter(long_line) and len(long_line.getMessage()) <= 503
    assert keep.filter(_record("waitress.queue", "Task queue depth is %d", 1))
    assert not keep.filter(_record("waitress.queue", "Task queue depth is %d", 2))
