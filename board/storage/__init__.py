"""Storage: the engines (SQLite by default, PostgreSQL at scale), the tables and their
migrations, the append-only guard on the event log, the database roles, batch inserts and the
job_facts rows QSTAT reads.
"""
