"""Local Salesforce Bulk API 1.0 and 2.0 + OAuth emulator, persistent in SQLite. Imports nothing else of sfbulk.

from sfbulk.emulator import start_emulator
with start_emulator() as emu:
    print(emu.base_url, emu.credentials)
"""

from .oauth import DEMO_CREDENTIALS
from .server import Emulator, start_emulator

__all__ = ["DEMO_CREDENTIALS", "Emulator", "start_emulator"]
