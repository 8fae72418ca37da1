"""Shared fixtures: each area keeps its fixtures in tests/fixtures/<area>.py."""

from fixtures.emulator import *  # noqa: F401,F403
from fixtures.engine import *  # noqa: F401,F403
from fixtures.server import *  # noqa: F401,F403
