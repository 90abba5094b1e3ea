"""The domain: the rules of dispatch, with no I/O. Lifecycle, priorities and deadlines,
dispositions, accountability flags, close policies, access (roles and precinct scope), privacy,
related complaints, QSTAT's definitions and New York local time. Everything else builds on
these; they import nothing of the project's but each other, and are tested in microseconds.
"""
