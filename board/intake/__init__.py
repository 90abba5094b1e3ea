"""Intake: 311 requests in. Files and feeds are read as streams (files), rows parsed
(rows, dates, text), decided and written as jobs exactly once through the use cases (pipeline,
file_import), and what cannot be used kept in a quarantine (quarantine).
"""
