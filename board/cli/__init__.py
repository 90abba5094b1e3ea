"""The `board` command: serve, demo, migrate, geo, users, units, tokens, intake
(import, quarantine, replay, poll) and qstat. Each command builds what it needs through
board.bootstrap; nothing imports this package.
"""
