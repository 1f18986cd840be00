"""Bearer-token authentication for the API. Session cookies are never read or written here."""
from flask import g, jsonify, request

from ..auth.services import user_for_token
from ..extensions import db

REALM = "helpdesk API"


def bearer_token():
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def unauthorized(message, invalid=False):
    """A 401 JSON error with the WWW-Authenticate challenge of RFC 6750."""
    challenge = f'Bearer realm="{REALM}"' + (', error="invalid_token"' if invalid else "")
    resp = jsonify({"error": {"code": 401, "message": message}})
    resp.status_code = 401
    resp.headers["WWW-Authenticate"] = challenge
    return resp


def authenticate():
    """Set g.api_user_id from the bearer token, or return the 401 response to send."""
    token = bearer_token()
    if token is None:
        return unauthorized("Authentication required: send 'Authorization: Bearer <token>' "
                            "(create a token with `flask users create-token EMAIL`).")
    user = user_for_token(token)
    if user is None:
        db.session.rollback()
        return unauthorized("The API token is invalid, revoked, or belongs to an inactive user.", invalid=True)
    g.api_user_id = user.id
    db.session.commit()  # keeps the token's last_used_at
    return None


def current_user_id():
    """The id of the agent who owns this request's token."""
    return g.api_user_id
