"""Configuration from the environment, with defaults that run the embedded board."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Public NYC data the board carries (data/README.md names each file's source and terms).
DATA = ROOT / "data"
GEO_DIR = DATA / "nyc"
DEMO_HOUR = DATA / "311" / "nyc311-2022-05-01-midnight-hour.csv"
VAR = ROOT / "var"


def _secret(var_dir: Path, make: bool = True) -> str:
    """A stable secret for the embedded default: made once, kept beside the database ("" when
    there is none yet and `make` is off, for `board check`, which changes nothing)."""
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    if not make:
        return ""
    var_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    secret_key: str
    geo_dir: Path | None
    tile_url: str | None
    route_max_distance_m: float
    https_only: bool
    #: Run the deadline worker inside `board serve`: the embedded default's one process does it
    #: all; with DATABASE_URL the Procfile's `deadlines:` process does (DEADLINE_WORKER=1|0).
    embedded_deadlines: bool = False
    metrics_token: str | None = None
    #: A person's session ends after this long without a request, and this long after log-in
    #: whatever happens (a wall's session lasts as long as its token).
    session_idle_minutes: int = 240
    session_max_hours: int = 12
    #: PostgreSQL: the owner's URL, for `board migrate` only; DATABASE_URL is then the
    #: application's role, which may not UPDATE or DELETE events (board/dbroles.py).
    migrate_database_url: str | None = None
    #: The address people reach the board at (https://board.example.org): OpenID Connect's
    #: redirect address and the links the board sends out are made from it.
    public_url: str | None = None
    #: Outgoing mail (smtp://user:pass@host:port, smtps://… for TLS), for notices.
    smtp_url: str | None = None
    #: Single sign-on (docs/sso.md): the provider's issuer URL (its discovery document is
    #: ISSUER/.well-known/openid-configuration), this board's client id and secret there.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    #: The name shown on the log-in page's button ("Sign in with …").
    oidc_name: str = "single sign-on"
    #: The ID token claim that lists a person's groups, and the groups' names → role and
    #: precincts (board/domain/claims.py: "prefix" for 311-sgt-75 style names).
    oidc_groups_claim: str = "groups"
    oidc_group_prefix: str = "311-"
    #: Explicit group → role entries (`group=role:precincts[:unit]; …`) for providers that
    #: name groups otherwise, e.g. Entra ID's group object ids.
    oidc_group_map: str = ""
    #: The scopes asked for (a provider that does not know `groups` needs it left out).
    oidc_scopes: str = "openid profile groups"
    #: Addresses of the reverse proxies whose X-Forwarded-For/-Proto are believed
    #: (comma-separated IPs or networks, "*" for any); uvicorn's forwarded_allow_ips.
    forwarded_allow_ips: str = "127.0.0.1"

    #: The caller's loop (docs/caller.md): notices come from MAIL_FROM; texts go
    #: through SMS_WEBHOOK_URL signed with SMS_WEBHOOK_SECRET; a status page
    #: answers 410 STATUS_PAGE_DAYS after its job closed.
    mail_from: str = "311 Dispatch <noreply@localhost>"
    sms_webhook_url: str | None = None
    sms_webhook_secret: str | None = None
    status_page_days: int = 30
    #: Run the notice worker inside `board serve` (NOTICE_WORKER=1|0), as for deadlines.
    embedded_notices: bool = False
    #: A place is a chronic location after this many complaints of one condition within 30
    #: days (CHRONIC_COMPLAINTS; 5, a 2014 NYPD order's threshold).
    chronic_complaints: int = 5
    #: The officer's phone asks for a one-shot position at "On scene" and "Close"
    #: (ARRIVAL_POSITION=ask, the default) or never (off). See docs/officers-evidence.md.
    arrival_position: str = "ask"
    #: What a summons number looks like (a regular expression matched whole).
    summons_pattern: str = r"\d{10}"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, make_secret: bool = True) -> Settings:
        env = dict(os.environ if env is None else env)
        var_dir = Path(env.get("BOARD_VAR_DIR", VAR))
        geo = env.get("BOARD_GEO_DIR")
        geo_dir = Path(geo) if geo else (GEO_DIR if GEO_DIR.is_dir() else None)
        return cls(
            database_url=env.get("DATABASE_URL") or f"sqlite:///{var_dir / 'board.db'}",
            redis_url=env.get("REDIS_URL") or None,
            secret_key=env.get("SECRET_KEY") or _secret(var_dir, make_secret),
            geo_dir=geo_dir,
            tile_url=env.get("TILE_URL") or None,
            route_max_distance_m=float(env.get("ROUTE_MAX_DISTANCE_M", "300")),
            https_only=env.get("BOARD_HTTPS_ONLY", "") == "1",
            embedded_deadlines=env.get("DEADLINE_WORKER",
                                       "0" if env.get("DATABASE_URL") else "1") == "1",
            metrics_token=env.get("METRICS_TOKEN") or None,
            chronic_complaints=int(env.get("CHRONIC_COMPLAINTS", "5")),
            session_idle_minutes=int(env.get("SESSION_IDLE_MINUTES", "240")),
            session_max_hours=int(env.get("SESSION_MAX_HOURS", "12")),
            migrate_database_url=env.get("MIGRATE_DATABASE_URL") or None,
            public_url=(env.get("PUBLIC_URL") or "").rstrip("/") or None,
            smtp_url=env.get("SMTP_URL") or None,
            oidc_issuer=env.get("OIDC_ISSUER") or None,
            oidc_client_id=env.get("OIDC_CLIENT_ID") or None,
            oidc_client_secret=env.get("OIDC_CLIENT_SECRET") or None,
            oidc_name=env.get("OIDC_NAME") or "single sign-on",
            oidc_groups_claim=env.get("OIDC_GROUPS_CLAIM") or "groups",
            oidc_group_prefix=env.get("OIDC_GROUP_PREFIX", "311-"),
            oidc_group_map=env.get("OIDC_GROUP_MAP", ""),
            oidc_scopes=env.get("OIDC_SCOPES") or "openid profile groups",
            forwarded_allow_ips=env.get("FORWARDED_ALLOW_IPS") or "127.0.0.1",
            mail_from=env.get("MAIL_FROM") or "311 Dispatch <noreply@localhost>",
            sms_webhook_url=env.get("SMS_WEBHOOK_URL") or None,
            sms_webhook_secret=env.get("SMS_WEBHOOK_SECRET") or None,
            status_page_days=int(env.get("STATUS_PAGE_DAYS", "30")),
            embedded_notices=env.get("NOTICE_WORKER",
                                     "0" if env.get("DATABASE_URL") else "1") == "1",
            arrival_position=_choice(env.get("ARRIVAL_POSITION"), ("ask", "off"),
                                     "ARRIVAL_POSITION"),
            summons_pattern=_pattern(env.get("SUMMONS_PATTERN") or r"\d{10}"),
        )


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str:
    """One of `allowed` (the first by default); anything else stops the start with why."""
    text = (value or allowed[0]).strip().lower()
    if text not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return text


def _pattern(text: str) -> str:
    import re

    try:
        re.compile(text)
    except re.error as e:
        raise ValueError(f"SUMMONS_PATTERN is not a regular expression: {e}") from None
    return text
