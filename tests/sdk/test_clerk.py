"""The Clerk twin as the official `clerk-backend-api` Python SDK sees it.

Every test makes a client with a fresh `sk_test_…` key, which is a fresh,
isolated Clerk instance on the twin. Session tokens are verified with the
SDK's own `verify_token` (which fetches the twin's JWKS) and
`authenticate_request` (networkless, with the JWKS key as PEM).
"""

from __future__ import annotations

import json
import uuid

import httpx
import jwt
import pytest
from clerk_backend_api import Clerk, models
from clerk_backend_api.security import verify_token
from clerk_backend_api.security.types import (AuthenticateRequestOptions,
                                              AuthStatus, TokenVerificationError,
                                              TokenVerificationErrorReason,
                                              VerifyTokenOptions)
from cryptography.hazmat.primitives import serialization

import raw_http


# The SDK warns about its own deprecated `paginated` query parameter.
pytestmark = pytest.mark.filterwarnings("ignore:.*DEPRECATED.*:DeprecationWarning")


def new_key() -> str:
    return f"sk_test_{uuid.uuid4().hex}"


@pytest.fixture
def key():
    return new_key()


@pytest.fixture
def clerk(wt, key):
    return Clerk(bearer_auth=key, server_url=wt.base_url("clerk") + "/v1")


def error_of(exc_info):
    """(status, first error) of a raised SDK error, whichever class the SDK
    picked for the status."""
    response = exc_info.value.raw_response
    body = response.json()
    assert body["clerk_trace_id"]
    first = body["errors"][0]
    assert first["message"] and first["long_message"]
    return response.status_code, first


def raw(wt, method, path, key=None, body=None):
    reply = raw_http.call(wt.base_url("clerk") + path, method, bearer=key, json_body=body)
    return reply.status, reply.json


# --- 1. auth and error shapes ---------------------------------------------------


def test_missing_and_malformed_keys_are_401_authentication_invalid(wt):
    for key in [None, "sk_test_", "pk_test_abc", "not a key"]:
        status, body = raw(wt, "GET", "/v1/users", key)
        assert status == 401
        assert body["errors"][0]["code"] == "authentication_invalid"
    bad = Clerk(bearer_auth="pk_live_nope", server_url=wt.base_url("clerk") + "/v1")
    with pytest.raises(models.ClerkErrors) as err:
        bad.users.list()
    assert error_of(err)[0] == 401
    assert err.value.data.errors[0].code == "authentication_invalid"


def test_unknown_paths_answer_in_clerks_shape(wt, key):
    status, body = raw(wt, "GET", "/v1/nothing_here", key)
    assert status == 404
    assert body["errors"][0]["code"] == "resource_not_found"


def test_accounts_are_isolated(wt, clerk):
    user = clerk.users.create(email_address=["same@example.com"])
    other = Clerk(bearer_auth=new_key(), server_url=wt.base_url("clerk") + "/v1")
    # The same address is free in another instance, and the user is not there.
    other.users.create(email_address=["same@example.com"])
    with pytest.raises(models.ClerkBaseError) as err:
        other.users.get(user_id=user.id)
    assert error_of(err)[0] == 404
    assert other.users.count().total_count == 1


# --- 2. users -----------------------------------------------------------------------


def test_user_crud(clerk):
    user = clerk.users.create(
        email_address=["ada@example.com"],
        phone_number=["+15555550100"],
        username="AdaL",
        password="correct horse battery",
        first_name="Ada",
        last_name="Lovelace",
        external_id="ext_1",
        public_metadata={"plan": "pro"},
        private_metadata={"stripe": "cus_1"},
        unsafe_metadata={"theme": "dark"},
    )
    assert user.id.startswith("user_")
    assert user.username == "adal"
    assert user.password_enabled is True
    assert user.email_addresses[0].email_address == "ada@example.com"
    assert user.email_addresses[0].verification.status == "verified"
    assert user.primary_email_address_id == user.email_addresses[0].id
    assert user.phone_numbers[0].phone_number == "+15555550100"
    assert (user.public_metadata, user.private_metadata) == ({"plan": "pro"}, {"stripe": "cus_1"})

    got = clerk.users.get(user_id=user.id)
    assert (got.id, got.external_id, got.first_name) == (user.id, "ext_1", "Ada")

    updated = clerk.users.update(user_id=user.id, first_name="Augusta", username="augusta")
    assert (updated.first_name, updated.username) == ("Augusta", "augusta")
    assert updated.updated_at >= user.updated_at
    # The old username is free again.
    clerk.users.create(username="adal", skip_password_requirement=True)

    deleted = clerk.users.delete(user_id=user.id)
    assert (deleted.object, deleted.id, deleted.deleted) == ("user", user.id, True)
    with pytest.raises(models.ClerkBaseError) as err:
        clerk.users.get(user_id=user.id)
    status, first = error_of(err)
    assert (status, first["code"]) == (404, "resource_not_found")


@pytest.mark.parametrize(
    "params, code, param",
    [
        ({"email_address": ["not-an-email"]}, "form_param_format_invalid", "email_address"),
        ({"phone_number": ["555"]}, "form_param_format_invalid", "phone_number"),
        ({"username": "ab"}, "form_username_invalid_length", "username"),
        ({"username": "has space"}, "form_username_invalid_character", "username"),
        ({"username": "okay", "password": "short"}, "form_password_length_too_short", "password"),
    ],
)
def test_user_validation_errors(clerk, params, code, param):
    with pytest.raises(models.ClerkErrors) as err:
        clerk.users.create(**params)
    status, first = error_of(err)
    assert (status, first["code"], first["meta"]["param_name"]) == (422, code, param)
    assert err.value.data.errors[0].code == code


def test_duplicate_identifiers_are_form_identifier_exists(clerk):
    clerk.users.create(email_address=["taken@example.com"], username="taken")
    for params in [{"email_address": ["TAKEN@example.com"]}, {"username": "taken"}]:
        with pytest.raises(models.ClerkErrors) as err:
            clerk.users.create(**params)
        status, first = error_of(err)
        assert (status, first["code"]) == (422, "form_identifier_exists")


def test_list_filters_paging_order_and_count(clerk):
    made = [
        clerk.users.create(email_address=[f"{name}@{domain}"], first_name=name.title(), external_id=f"x-{name}")
        for name, domain in [("carol", "a.io"), ("alice", "b.io"), ("bob", "a.io")]
    ]
    carol, alice, bob = made
    # Newest first by default.
    assert [u.id for u in clerk.users.list()] == [bob.id, alice.id, carol.id]
    assert [u.id for u in clerk.users.list(request={"order_by": "+first_name"})] == [alice.id, bob.id, carol.id]
    assert [u.id for u in clerk.users.list(request={"email_address": ["alice@b.io", "bob@a.io"]})] == [bob.id, alice.id]
    assert [u.id for u in clerk.users.list(request={"external_id": ["x-carol"]})] == [carol.id]
    assert [u.id for u in clerk.users.list(request={"user_id": [alice.id]})] == [alice.id]
    assert [u.id for u in clerk.users.list(request={"query": "a.io"})] == [bob.id, carol.id]
    page1 = clerk.users.list(request={"limit": 2, "offset": 0})
    page2 = clerk.users.list(request={"limit": 2, "offset": 2})
    assert [u.id for u in page1 + page2] == [bob.id, alice.id, carol.id]
    assert clerk.users.count().total_count == 3
    assert clerk.users.count(request={"query": "a.io"}).total_count == 2
    assert clerk.users.count(request={"email_address": ["nobody@x.io"]}).total_count == 0
    with pytest.raises(models.ClerkErrors) as err:
        clerk.users.list(request={"order_by": "-shoe_size"})
    assert error_of(err)[1]["code"] == "form_param_value_invalid"


def test_email_addresses_and_phone_numbers_after_creation(clerk):
    user = clerk.users.create(email_address=["first@example.com"])
    added = clerk.email_addresses.create(
        request={"user_id": user.id, "email_address": "second@example.com", "primary": True}
    )
    assert added.email_address == "second@example.com"
    refreshed = clerk.users.get(user_id=user.id)
    assert refreshed.primary_email_address_id == added.id
    assert [e.email_address for e in refreshed.email_addresses] == ["first@example.com", "second@example.com"]
    assert clerk.email_addresses.get(email_address_id=added.id).id == added.id
    unverified = clerk.email_addresses.update(email_address_id=added.id, verified=False)
    assert unverified.verification is None
    with pytest.raises(models.ClerkErrors) as err:
        clerk.email_addresses.create(request={"user_id": user.id, "email_address": "FIRST@example.com"})
    assert error_of(err)[1]["code"] == "form_identifier_exists"
    deleted = clerk.email_addresses.delete(email_address_id=added.id)
    assert (deleted.object, deleted.id, deleted.deleted) == ("email_address", added.id, True)
    assert clerk.users.get(user_id=user.id).primary_email_address_id == refreshed.email_addresses[0].id

    phone = clerk.phone_numbers.create(request={"user_id": user.id, "phone_number": "+15555550199"})
    assert clerk.users.get(user_id=user.id).primary_phone_number_id == phone.id
    assert clerk.phone_numbers.delete(phone_number_id=phone.id).deleted is True


def test_metadata_merge_is_deep_and_null_deletes(clerk):
    user = clerk.users.create(
        username="meta",
        public_metadata={"prefs": {"theme": "dark", "lang": "en"}, "old": 1},
    )
    merged = clerk.users.update_metadata(
        user_id=user.id,
        public_metadata={"prefs": {"lang": None, "tz": "UTC"}, "old": None, "new": [1, 2]},
        private_metadata={"secret": True},
    )
    assert merged.public_metadata == {"prefs": {"theme": "dark", "tz": "UTC"}, "new": [1, 2]}
    assert merged.private_metadata == {"secret": True}
    assert clerk.users.get(user_id=user.id).public_metadata == merged.public_metadata


def test_ban_unban_lock_unlock(clerk):
    user = clerk.users.create(username="rowdy")
    session = clerk.sessions.create(request={"user_id": user.id})
    assert clerk.users.ban(user_id=user.id).banned is True
    # Banning signs the user out everywhere, and they cannot sign in.
    assert clerk.sessions.get(session_id=session.id).status == "revoked"
    with pytest.raises(models.ClerkBaseError) as err:
        clerk.sessions.create(request={"user_id": user.id})
    assert error_of(err)[1]["code"] == "user_banned"
    assert [u.id for u in clerk.users.list(request={"banned": True})] == [user.id]
    assert clerk.users.unban(user_id=user.id).banned is False
    assert clerk.users.lock(user_id=user.id).locked is True
    assert clerk.users.unlock(user_id=user.id).locked is False


# --- 3. sessions and tokens -------------------------------------------------------


def test_session_tokens_verify_with_the_sdk(wt, clerk, key):
    user = clerk.users.create(username="signed-in")
    session = clerk.sessions.create(request={"user_id": user.id})
    assert (session.status, session.user_id) == ("active", user.id)
    assert [s.id for s in clerk.sessions.list(user_id=user.id)] == [session.id]

    token = clerk.sessions.create_token(session_id=session.id, expires_in_seconds=120)
    assert token.object == "token"
    claims = verify_token(token.jwt, VerifyTokenOptions(secret_key=key, api_url=wt.base_url("clerk")))
    assert (claims["sub"], claims["sid"]) == (user.id, session.id)
    assert claims["exp"] - claims["iat"] == 120
    assert claims["iss"].startswith("https://")
    assert claims["azp"]
    header = jwt.get_unverified_header(token.jwt)
    assert header["alg"] == "RS256"
    assert header["kid"] in [k.kid for k in clerk.jwks.get_jwks().keys]

    # Another instance's keys do not verify this instance's tokens.
    with pytest.raises(TokenVerificationError) as err:
        verify_token(token.jwt, VerifyTokenOptions(secret_key=new_key(), api_url=wt.base_url("clerk")))
    assert err.value.reason == TokenVerificationErrorReason.JWK_KID_MISMATCH

    # A revoked session mints no more tokens.
    assert clerk.sessions.revoke(session_id=session.id).status == "revoked"
    assert clerk.sessions.list(user_id=user.id, status="active") == []
    with pytest.raises(models.ClerkBaseError) as exc:
        clerk.sessions.create_token(session_id=session.id)
    assert error_of(exc)[0] == 404


def _pem_of(clerk, kid):
    jwk = next(k for k in clerk.jwks.get_jwks().keys if k.kid == kid)
    public = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps({"kty": jwk.kty, "n": jwk.n, "e": jwk.e}))
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def test_authenticate_request_networkless_with_organization_claims(clerk):
    user = clerk.users.create(username="org-member")
    org = clerk.organizations.create(request={"name": "Acme", "slug": "acme", "created_by": user.id})
    session = clerk.sessions.create(request={"user_id": user.id, "active_organization_id": org.id})
    token = clerk.sessions.create_token(session_id=session.id).jwt
    pem = _pem_of(clerk, jwt.get_unverified_header(token)["kid"])
    request = httpx.Request("GET", "http://app.local/", headers={"Authorization": f"Bearer {token}"})
    state = clerk.authenticate_request(
        request, AuthenticateRequestOptions(jwt_key=pem, authorized_parties=["http://localhost:3000"])
    )
    assert state.status == AuthStatus.SIGNED_IN
    assert (state.payload["sub"], state.payload["org_id"], state.payload["org_slug"], state.payload["org_role"]) == (
        user.id, org.id, "acme", "admin",
    )
    wrong_party = clerk.authenticate_request(
        request, AuthenticateRequestOptions(jwt_key=pem, authorized_parties=["https://evil.example"])
    )
    assert wrong_party.status == AuthStatus.SIGNED_OUT


def test_sessions_expire_with_twin_time(wt, clerk):
    user = clerk.users.create(username="sleepy")
    session = clerk.sessions.create(request={"user_id": user.id})
    wt.control("POST", "clock/advance", {"by": "8d"})
    assert clerk.sessions.get(session_id=session.id).status == "expired"
    assert [s.id for s in clerk.sessions.list(user_id=user.id, status="expired")] == [session.id]
    with pytest.raises(models.ClerkBaseError) as err:
        clerk.sessions.create_token(session_id=session.id)
    assert error_of(err)[0] == 404


# --- 4. sign-in tokens, organizations, invitations ------------------------------


def test_sign_in_tokens(clerk):
    user = clerk.users.create(username="ticketed")
    token = clerk.sign_in_tokens.create(request={"user_id": user.id, "expires_in_seconds": 600})
    assert token.id.startswith("sit_")
    assert (token.status, token.user_id) == ("pending", user.id)
    assert token.token and token.url.endswith(token.token)
    revoked = clerk.sign_in_tokens.revoke(sign_in_token_id=token.id)
    assert revoked.status == "revoked"
    with pytest.raises(models.ClerkBaseError) as err:
        clerk.sign_in_tokens.create(request={"user_id": "user_missing"})
    assert error_of(err)[0] == 404


def test_organizations_and_memberships(clerk):
    owner = clerk.users.create(email_address=["owner@example.com"], first_name="Olive")
    member = clerk.users.create(email_address=["member@example.com"], first_name="Max")
    org = clerk.organizations.create(
        request={"name": "Acme Inc", "created_by": owner.id, "public_metadata": {"tier": "gold"}}
    )
    assert org.id.startswith("org_")
    assert org.slug.startswith("acme-inc")
    assert org.members_count == 1
    assert clerk.organizations.get(organization_id=org.slug).id == org.id

    membership = clerk.organization_memberships.create(organization_id=org.id, user_id=member.id, role="org:member")
    assert (membership.role, membership.organization.id) == ("org:member", org.id)
    assert membership.public_user_data.identifier == "member@example.com"
    listed = clerk.organization_memberships.list(organization_id=org.id, order_by="+created_at")
    assert listed.total_count == 2
    assert [m.public_user_data.user_id for m in listed.data] == [owner.id, member.id]
    assert [m.role for m in listed.data] == ["org:admin", "org:member"]
    admins = clerk.organization_memberships.list(organization_id=org.id, role=["org:admin"])
    assert [m.public_user_data.user_id for m in admins.data] == [owner.id]

    promoted = clerk.organization_memberships.update(organization_id=org.id, user_id=member.id, role="org:admin")
    assert promoted.role == "org:admin"
    with pytest.raises(models.ClerkBaseError) as err:
        clerk.organization_memberships.create(organization_id=org.id, user_id=member.id, role="org:member")
    assert error_of(err)[1]["code"] == "already_a_member_in_organization"

    mine = clerk.organizations.list(user_id=[member.id])
    assert (mine.total_count, [o.id for o in mine.data]) == (1, [org.id])
    assert [u.id for u in clerk.users.list(request={"organization_id": [org.id], "order_by": "+created_at"})] == [
        owner.id, member.id,
    ]

    updated = clerk.organizations.update(organization_id=org.id, name="Acme Corp", max_allowed_memberships=10)
    assert (updated.name, updated.max_allowed_memberships) == ("Acme Corp", 10)
    merged = clerk.organizations.merge_metadata(organization_id=org.id, public_metadata={"tier": None, "seats": 3})
    assert merged.public_metadata == {"seats": 3}

    removed = clerk.organization_memberships.delete(organization_id=org.id, user_id=member.id)
    assert removed.public_user_data.user_id == member.id
    assert clerk.organization_memberships.list(organization_id=org.id).total_count == 1

    gone = clerk.organizations.delete(organization_id=org.id)
    assert gone.deleted is True
    with pytest.raises(models.ClerkBaseError) as err:
        clerk.organizations.get(organization_id=org.id)
    assert error_of(err)[0] == 404


def test_organization_slugs_are_unique(clerk):
    clerk.organizations.create(request={"name": "One", "slug": "shared"})
    with pytest.raises(models.ClerkBaseError) as err:
        clerk.organizations.create(request={"name": "Two", "slug": "shared"})
    status, first = error_of(err)
    assert (status, first["code"]) == (422, "form_identifier_exists")


def test_invitations(wt, clerk):
    invitation = clerk.invitations.create(
        request={"email_address": "new@example.com", "public_metadata": {"cohort": 3}, "expires_in_days": 1}
    )
    assert invitation.id.startswith("inv_")
    assert (invitation.status, invitation.email_address) == ("pending", "new@example.com")
    assert invitation.public_metadata == {"cohort": 3}
    with pytest.raises(models.ClerkBaseError) as err:
        clerk.invitations.create(request={"email_address": "new@example.com"})
    assert error_of(err)[1]["code"] == "duplicate_record"

    other = clerk.invitations.create(request={"email_address": "other@example.com"})
    assert [i.id for i in clerk.invitations.list()] == [other.id, invitation.id]
    revoked = clerk.invitations.revoke(invitation_id=other.id)
    assert (revoked.id, revoked.status) == (other.id, "revoked")
    assert [i.id for i in clerk.invitations.list(status="revoked")] == [other.id]

    # One day of twin time later the first one has expired.
    wt.control("POST", "clock/advance", {"by": "25h"})
    assert [i.id for i in clerk.invitations.list(status="expired")] == [invitation.id]
    assert clerk.invitations.list(status="pending") == []


# --- 5. webhooks ----------------------------------------------------------------


@pytest.fixture
def hooks(wt):
    import base64
    import os

    from conftest import WebhookReceiver

    receiver = WebhookReceiver("/clerk")
    receiver.secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    wt.control("PUT", "twins/clerk/config", {"webhook-url": receiver.url, "webhook-secret": receiver.secret})
    try:
        yield receiver
    finally:
        wt.control("PUT", "twins/clerk/config", {"webhook-url": "", "webhook-secret": ""})
        receiver.close()


def _svix_verify(headers, payload, secret):
    """Svix's algorithm, recomputed: HMAC-SHA256 over "{id}.{timestamp}.{body}"."""
    import base64
    import hashlib
    import hmac
    import time

    assert abs(time.time() - int(headers["svix-timestamp"])) < 300, "wall time, within Svix's tolerance"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['svix-id']}.{headers['svix-timestamp']}.{payload}".encode()
    expected = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return any(sig == f"v1,{expected}" for sig in headers["svix-signature"].split(" "))


def test_user_events_are_delivered_svix_signed(wt, clerk, hooks):
    user = clerk.users.create(email_address=["hooked@example.com"])
    clerk.users.update_metadata(user_id=user.id, public_metadata={"plan": "pro"})
    clerk.users.delete(user_id=user.id)
    wt.control("POST", "twins/clerk/outbound/flush")
    events = {}
    for headers, payload in hooks.received:
        assert headers["svix-id"].startswith("msg_")
        assert _svix_verify(headers, payload, hooks.secret)
        assert not _svix_verify(headers, payload, "whsec_" + "A" * 32)
        event = json.loads(payload)
        assert event["object"] == "event" and event["instance_id"].startswith("ins_")
        events[event["type"]] = event["data"]
    assert sorted(events) == ["user.created", "user.deleted", "user.updated"]
    assert events["user.created"]["email_addresses"][0]["email_address"] == "hooked@example.com"
    assert events["user.updated"]["public_metadata"] == {"plan": "pro"}
    assert events["user.deleted"] == {"object": "user", "id": user.id, "deleted": True}
    # The event's user is the SDK's own model.
    assert models.User.model_validate(events["user.created"]).id == user.id


def test_jwt_template_tokens_verify_with_the_sdk(wt, clerk, key):
    user = clerk.users.create(email_address=["tmpl@example.com"], public_metadata={"plan": "pro"})
    # The SDK's request model for `claims` declares no fields, so it sends
    # `{}` whatever it is given; claims with shortcodes go in by plain HTTP.
    status, template = raw(wt, "POST", "/v1/jwt_templates", key, {
        "name": "backend",
        "claims": {"email": "{{user.primary_email_address}}", "plan": "{{user.public_metadata.plan}}"},
        "lifetime": 600,
    })
    assert status == 200
    assert clerk.jwt_templates.get(template_id=template["id"]).name == "backend"
    sdk_made = clerk.jwt_templates.create(request={"name": "plain", "claims": {}, "lifetime": 120})
    assert [t.name for t in clerk.jwt_templates.list()] == ["backend", "plain"]

    session = clerk.sessions.create(request={"user_id": user.id})
    options = VerifyTokenOptions(secret_key=key, api_url=wt.base_url("clerk"))
    token = clerk.sessions.create_token_from_template(session_id=session.id, template_name="backend").jwt
    claims = verify_token(token, options)
    assert (claims["sub"], claims["email"], claims["plan"]) == (user.id, "tmpl@example.com", "pro")
    assert claims["exp"] - claims["iat"] == 600
    plain = verify_token(
        clerk.sessions.create_token_from_template(session_id=session.id, template_name="plain").jwt, options
    )
    assert plain["exp"] - plain["iat"] == 120

    assert clerk.jwt_templates.delete(template_id=sdk_made.id).deleted is True
    with pytest.raises(models.ClerkBaseError) as err:
        clerk.sessions.create_token_from_template(session_id=session.id, template_name="plain")
    assert error_of(err)[0] == 404
