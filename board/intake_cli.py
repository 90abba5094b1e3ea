"""Intake commands: import-311, quarantine, replay (see board.intake)."""
