"""Local Salesforce Bulk API emulator (filled in by its owner)."""
