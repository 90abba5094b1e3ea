"""Accountability: what the record says about the work. QSTAT's figures and
tables, the review queue of flagged closes, the alerts panel, the command log and the deadline
watchdog that writes overdue events.
"""
