"""Who is asking: local accounts and API tokens, server-side sessions, log-in throttling,
and turning a request into an Actor (board.domain.access) or refusing it.
"""
