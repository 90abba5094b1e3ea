"""Single sign-on with OpenID Connect, through Authlib: the authorization code flow with PKCE.

The provider is found from its discovery document (OIDC_ISSUER/.well-known/openid-configuration).
`begin` sends the browser there with a fresh `state`, `nonce` and PKCE verifier kept in the
board's signed session cookie; `finish` takes the code back, checks the `state`, swaps the code
(with the verifier and the client secret) for tokens, and verifies the ID token against the
provider's published keys: signature, issuer, audience, expiry and the `nonce`. Only then are
the person's groups read and mapped (board/domain/claims.py); an unmapped person is refused
before anything about them is stored. A mapped person becomes a user row keyed by
"issuer subject" (`users.sso_subject`), created at the first sign-in and given the role,
precincts and unit of their groups at every sign-in (board/auth/accounts.py, sso_user).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.deprecate import AuthlibDeprecationWarning
from authlib.integrations.base_client import OAuthError
from joserfc import errors as jose_errors
from starlette.requests import Request
from starlette.responses import Response

from board.domain.claims import Grant, GroupMapping, groups_of, parse_group_map
from board.settings import Settings

with warnings.catch_warnings():  # Authlib 1.9 says, on import, it will move to httpx2 one day
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth

log = logging.getLogger("board.auth.oidc")

#: Clock skew tolerated between the provider and the board on the ID token's times (seconds).
LEEWAY = 60
CALLBACK = "/login/sso/callback"


class Refused(Exception):
    """A sign-in the board does not accept: the message is for the person, status for HTTP."""

    def __init__(self, message: str, status: int = 403, reason: str = "refused") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Person:
    """Who the provider vouched for, and what their groups give them on the board."""

    subject: str  # "issuer subject": unique across providers
    name: str
    username_hint: str
    grant: Grant


def configuration_problems(settings: Settings) -> list[str]:
    """What keeps single sign-on from working with these settings (empty: fine or off)."""
    problems = []
    if bool(settings.oidc_issuer) != bool(settings.oidc_client_id):
        problems.append("OIDC_ISSUER and OIDC_CLIENT_ID go together: set both or neither")
    if not settings.oidc_enabled:
        return problems
    if not settings.oidc_issuer.startswith("https://") and not _local(settings.oidc_issuer):
        problems.append("OIDC_ISSUER must be an https:// address")
    if not settings.oidc_client_secret:
        problems.append("OIDC_CLIENT_SECRET is not set (the board is a confidential client)")
    if not settings.public_url:
        problems.append("OIDC needs PUBLIC_URL: the provider sends people back to "
                        "PUBLIC_URL" + CALLBACK)
    try:
        parse_group_map(settings.oidc_group_map)
    except ValueError as e:
        problems.append(f"OIDC_GROUP_MAP: {e}")
    if not settings.oidc_group_prefix and not settings.oidc_group_map.strip():
        problems.append("no group maps to a role: set OIDC_GROUP_PREFIX or OIDC_GROUP_MAP")
    return problems


def _forget_pending(request: Request) -> None:
    """A callback with a state we never sent ends every sign-in this browser had under way
    (Authlib keeps each as `_state_oidc_<state>` in the session)."""
    for key in [k for k in request.session if k.startswith("_state_oidc_")]:
        del request.session[key]


def _local(url: str) -> bool:
    return url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]"))


class SingleSignOn:
    """The board's client at one OpenID provider."""

    def __init__(self, settings: Settings) -> None:
        problems = configuration_problems(settings)
        if problems:
            raise ValueError("; ".join(problems))
        self.name = settings.oidc_name
        self.issuer = settings.oidc_issuer or ""
        self.client_id = settings.oidc_client_id or ""
        self.groups_claim = settings.oidc_groups_claim
        self.mapping = GroupMapping(settings.oidc_group_prefix,
                                    parse_group_map(settings.oidc_group_map))
        self.redirect_uri = f"{settings.public_url}{CALLBACK}"
        self.after_logout = f"{settings.public_url}/login"
        oauth = OAuth()
        self.client = oauth.register(
            "oidc", client_id=self.client_id, client_secret=settings.oidc_client_secret,
            server_metadata_url=f"{self.issuer.rstrip('/')}/.well-known/openid-configuration",
            client_kwargs={"scope": settings.oidc_scopes, "code_challenge_method": "S256",
                           "timeout": 10.0})

    async def begin(self, request: Request) -> Response:
        """Send the browser to the provider (state, nonce and PKCE kept in the session)."""
        try:
            return await self.client.authorize_redirect(request, self.redirect_uri)
        except (httpx.HTTPError, AuthlibBaseError, RuntimeError, ValueError) as e:
            log.warning("single sign-on could not start: %s", e)
            raise Refused(f"{self.name} cannot be reached just now: try again in a moment, "
                          "or log in with a board account.", 502, "unreachable") from e

    async def finish(self, request: Request) -> Person:
        """The provider's answer, verified, as a mapped person; Refused otherwise."""
        token = await self._tokens(request)
        claims = token.get("userinfo")
        if not claims or not claims.get("sub"):
            raise Refused("The identity provider sent no ID token.", 401, "no_id_token")
        groups = groups_of(claims, self.groups_claim)
        if groups is None:
            groups = await self._userinfo_groups(token)
        grant = self.mapping.grant(groups or [])
        if grant is None:
            log.warning("single sign-on refused %s: no group maps to the board (%s)",
                        str(claims["sub"])[:80], ", ".join(g[:40] for g in (groups or [])[:10]))
            raise Refused("You signed in, but you have no access to the dispatch board: none "
                          "of your groups gives a role here. Ask your administrator to add you "
                          "to a board group.", 403, "unmapped")
        name = str(claims.get("name") or claims.get("preferred_username") or claims["sub"])
        hint = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])
        return Person(f"{claims['iss']} {claims['sub']}"[:400], name[:120], hint[:60], grant)

    async def _tokens(self, request: Request) -> dict[str, Any]:
        if "error" in request.query_params:
            raise Refused("The identity provider did not sign you in: "
                          f"{request.query_params.get('error', '')[:100]}.", 401, "provider")
        try:
            return await self.client.authorize_access_token(request, leeway=LEEWAY)
        except OAuthError as e:
            if e.error == "mismatching_state":
                _forget_pending(request)
                raise Refused("This sign-in was not started from this browser, or was "
                              "already used: start again from the log-in page.", 400,
                              "state") from e
            log.warning("single sign-on: the provider refused the code: %s", e)
            raise Refused("The identity provider refused the sign-in: start again.", 401,
                          "provider") from e
        except jose_errors.ExpiredTokenError as e:
            raise Refused("The identity provider's ID token has expired (is this server's "
                          "clock right?): start again.", 401, "expired") from e
        except (jose_errors.JoseError, AuthlibBaseError, ValueError) as e:
            log.warning("single sign-on: ID token refused: %r", e)
            raise Refused("The identity provider's ID token could not be verified, so you are "
                          "not signed in.", 401, "id_token") from e
        except httpx.HTTPError as e:
            raise Refused(f"{self.name} cannot be reached just now: try again in a moment.",
                          502, "unreachable") from e

    async def _userinfo_groups(self, token: dict[str, Any]) -> list[str] | None:
        """Some providers put groups only in the userinfo answer."""
        try:
            info = await self.client.userinfo(token=token)
        except (httpx.HTTPError, AuthlibBaseError, KeyError):
            return None
        if info.get("sub") != token["userinfo"]["sub"]:
            return None
        return groups_of(info, self.groups_claim)

    async def logout_url(self) -> str | None:
        """The provider's end-session address (RP-initiated logout), if it has one."""
        try:
            metadata = await self.client.load_server_metadata()
        except (httpx.HTTPError, AuthlibBaseError, ValueError):
            return None
        if not metadata.get("end_session_endpoint"):
            return None
        found = await self.client.create_logout_url(
            post_logout_redirect_uri=self.after_logout, client_id=self.client_id)
        return found["url"]
