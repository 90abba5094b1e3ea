"""What operators see: structured logs with request ids, Prometheus metrics
and secrets kept out of access lines.
"""
