"""Secrets out of logs: query parameters that carry a credential are masked in any access line.

The board's own access line leaves query strings out (board/logs.py), and a wall's `?token=` is
exchanged for a session at once; this filter covers uvicorn's access log whenever it is on
(`uvicorn board...` run by hand, `--access-log`), and any other line that logs a URL.
"""

from __future__ import annotations

import logging
import re

#: Query parameters whose value is a credential.
SECRET_PARAMS = ("token", "api_key", "apikey", "access_token", "key", "password", "secret")
_SECRET = re.compile(r"(?i)([?&;](?:%s)=)[^&#\s\"']*" % "|".join(SECRET_PARAMS))  # noqa: UP031


def redact(text: str) -> str:
    """'/wall/75?token=brd_x&a=1' -> '/wall/75?token=[redacted]&a=1'."""
    return _SECRET.sub(r"\1[redacted]", text)


class RedactSecrets(logging.Filter):
    """Masks credentials in a record's message arguments (uvicorn passes the path as one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def shape(value: object) -> str:
    """What a value looks like, not what it says: a bound parameter in a log line is a user
    name, a search text or a password ('secret\\x01' → 'str[7] with control characters')."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{str(k)[:40]}: {shape(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        inner = ", ".join(shape(v) for v in value[:20]) + (", …" if len(value) > 20 else "")
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if value is None:
        return "None"
    if isinstance(value, str):
        odd = any(not ch.isprintable() for ch in value)
        return f"str[{len(value)}]" + (" with control characters" if odd else "")
    if isinstance(value, bytes | bytearray):
        return f"bytes[{len(value)}]"
    return type(value).__name__


def install(logger_name: str = "uvicorn.access") -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
