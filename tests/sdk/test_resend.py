"""The Resend twin as the official `resend` Python SDK sees it.

The SDK keeps its API key and base URL at module level: every test points
`resend.api_url` at the twin and sets `resend.api_key` to a fresh `re_…`
key, which is a fresh, isolated account.
"""

from __future__ import annotations

import datetime
import json
import uuid

import pytest
import resend
from resend.exceptions import (InvalidApiKeyError, MissingApiKeyError,
                               MissingRequiredFieldsError, ResendError,
                               ValidationError)

import raw_http

FROM = "Acme <onboarding@acme.dev>"


def new_key() -> str:
    return f"re_{uuid.uuid4().hex}"


@pytest.fixture
def key(wt):
    k = new_key()
    resend.api_url = wt.base_url("resend")
    resend.api_key = k
    return k


def raw(wt, method, path, key, body=None, headers=None):
    """A plain HTTP request, for what the SDK cannot express or hides."""
    url = wt.base_url("resend") + path
    reply = raw_http.call(url, method, bearer=key, json_body=body, headers=headers)
    return reply.status, reply.json


def mail(to, **extra):
    return {"from": FROM, "to": to, "subject": "Hello", "html": "<p>hi</p>", **extra}


def advance(wt, by: str) -> None:
    wt.control("POST", "clock/advance", {"by": by})


# --- 1. wire ---------------------------------------------------------------


def test_missing_key_is_401_missing_api_key(wt, key):
    status, body = raw(wt, "GET", "/emails", None)
    assert status == 401
    assert body["statusCode"] == 401
    assert body["name"] == "missing_api_key"
    assert "API key" in body["message"]


def test_malformed_key_is_the_sdks_invalid_api_key_error(wt, key):
    resend.api_key = "sk_test_not_resend"
    with pytest.raises(InvalidApiKeyError) as err:
        resend.Emails.list()
    assert err.value.code == 403
    assert err.value.error_type == "invalid_api_key"
    assert err.value.message == "API key is invalid"


def test_empty_key_is_the_sdks_missing_api_key_error(wt, key):
    resend.api_key = ""
    with pytest.raises(MissingApiKeyError) as err:
        resend.Emails.send(mail("a@x.io"))
    assert err.value.code == 401
    assert err.value.error_type == "missing_api_key"


def test_unknown_path_and_method_in_resend_shape(wt, key):
    status, body = raw(wt, "GET", "/nope", key)
    assert (status, body["name"]) == (404, "not_found")
    status, body = raw(wt, "PUT", "/emails", key, {})
    assert (status, body["name"]) == (405, "method_not_allowed")


def test_accounts_are_isolated(wt, key):
    sent = resend.Emails.send(mail("a@x.io"))
    resend.api_key = new_key()
    with pytest.raises(ResendError) as err:
        resend.Emails.get(sent["id"])
    assert err.value.code == 404
    assert err.value.error_type == "not_found"
    assert resend.Emails.list()["data"] == []
    resend.api_key = key
    assert resend.Emails.get(sent["id"])["id"] == sent["id"]


def test_idempotent_replay_and_mismatch(wt, key):
    first = resend.Emails.send(mail("a@x.io"), {"idempotency_key": "order-1"})
    again = resend.Emails.send(mail("a@x.io"), {"idempotency_key": "order-1"})
    assert again["id"] == first["id"]
    assert len(resend.Emails.list()["data"]) == 1
    with pytest.raises(ResendError) as err:
        resend.Emails.send(mail("b@x.io"), {"idempotency_key": "order-1"})
    assert err.value.code == 409
    assert err.value.error_type == "invalid_idempotent_request"
    advance(wt, "25h")  # keys expire after 24 hours
    later = resend.Emails.send(mail("b@x.io"), {"idempotency_key": "order-1"})
    assert later["id"] != first["id"]
    batch = [mail("a@x.io"), mail("b@x.io")]
    one = resend.Batch.send(batch, {"idempotency_key": "batch-1"})
    two = resend.Batch.send(batch, {"idempotency_key": "batch-1"})
    assert [d["id"] for d in one["data"]] == [d["id"] for d in two["data"]]
    assert len(resend.Emails.list()["data"]) == 4


# --- 2. emails -------------------------------------------------------------


def test_send_and_get_full_email(wt, key):
    sent = resend.Emails.send(
        mail(
            ["delivered@resend.dev", "Bob <bob@x.io>"],
            text="hi",
            cc="cc@x.io",
            bcc=["bcc@x.io"],
            reply_to="reply@x.io",
            headers={"X-Entity-Ref-ID": "123"},
            tags=[{"name": "category", "value": "welcome"}],
            attachments=[{"filename": "a.txt", "content": list(b"hello")}],
        )
    )
    assert uuid.UUID(sent["id"]).version == 4
    email = resend.Emails.get(sent["id"])
    assert email["object"] == "email"
    assert email["id"] == sent["id"]
    assert email["from"] == FROM
    assert email["to"] == ["delivered@resend.dev", "Bob <bob@x.io>"]
    assert email["subject"] == "Hello"
    assert email["html"] == "<p>hi</p>"
    assert email["text"] == "hi"
    assert email["cc"] == ["cc@x.io"]
    assert email["bcc"] == ["bcc@x.io"]
    assert email["reply_to"] == ["reply@x.io"]
    assert email["last_event"] == "delivered"
    assert email["scheduled_at"] is None
    assert email["created_at"].endswith("+00:00")


@pytest.mark.parametrize(
    "params, exc, name",
    [
        ({"to": "a@x.io", "subject": "s"}, MissingRequiredFieldsError, "missing_required_field"),
        ({"from": FROM, "subject": "s"}, MissingRequiredFieldsError, "missing_required_field"),
        ({"from": FROM, "to": "a@x.io"}, MissingRequiredFieldsError, "missing_required_field"),
        ({"from": FROM, "to": "not-an-address", "subject": "s"}, ValidationError, "validation_error"),
        ({"from": FROM, "to": [f"u{i}@x.io" for i in range(51)], "subject": "s"}, ValidationError, "validation_error"),
        ({"from": FROM, "to": "a@x.io", "subject": "s", "scheduled_at": "someday"}, ValidationError, "validation_error"),
    ],
)
def test_send_validation_errors(wt, key, params, exc, name):
    with pytest.raises(exc) as err:
        resend.Emails.send(params)
    assert err.value.code == 422
    assert err.value.error_type == name
    assert err.value.message


def test_bad_from_address(wt, key):
    with pytest.raises(ResendError) as err:
        resend.Emails.send({"from": "nope", "to": "a@x.io", "subject": "s"})
    assert (err.value.code, err.value.error_type) == (422, "invalid_from_address")


def test_get_unknown_and_malformed_ids(wt, key):
    with pytest.raises(ResendError) as err:
        resend.Emails.get(str(uuid.uuid4()))
    assert (err.value.code, err.value.error_type) == (404, "not_found")
    with pytest.raises(ValidationError) as err:
        resend.Emails.get("not-a-uuid")
    assert err.value.code == 422


def test_list_paginates_with_after_and_before(wt, key):
    ids = [resend.Emails.send(mail(f"u{i}@x.io"))["id"] for i in range(5)]
    page = resend.Emails.list({"limit": 2})
    assert page["object"] == "list"
    assert page["has_more"] is True
    assert [e["id"] for e in page["data"]] == [ids[4], ids[3]]
    assert page["data"][0]["last_event"] == "delivered"
    rest = resend.Emails.list({"limit": 10, "after": ids[3]})
    assert [e["id"] for e in rest["data"]] == [ids[2], ids[1], ids[0]]
    assert rest["has_more"] is False
    newer = resend.Emails.list({"before": ids[2]})
    assert [e["id"] for e in newer["data"]] == [ids[4], ids[3]]
    with pytest.raises(ValidationError):
        resend.Emails.list({"limit": 101})


def test_batch_send(wt, key):
    sent = resend.Batch.send([mail("a@x.io"), mail(["b@x.io", "c@x.io"])])
    assert len(sent["data"]) == 2
    assert "errors" not in sent
    for item in sent["data"]:
        assert resend.Emails.get(item["id"])["subject"] == "Hello"
    assert len(resend.Emails.list()["data"]) == 2


def test_batch_strict_and_permissive_validation(wt, key):
    batch = [mail("a@x.io"), {"from": FROM, "subject": "no to"}]
    with pytest.raises(MissingRequiredFieldsError):
        resend.Batch.send(batch)
    assert resend.Emails.list()["data"] == []
    sent = resend.Batch.send(batch, {"batch_validation": "permissive"})
    assert len(sent["data"]) == 1
    assert sent["errors"][0]["index"] == 1
    assert "to" in sent["errors"][0]["message"]
    with pytest.raises(ValidationError):
        resend.Batch.send([mail("a@x.io")] * 101)


# --- 3. test recipients and time ------------------------------------------


@pytest.mark.parametrize(
    "to, event",
    [
        ("delivered@resend.dev", "delivered"),
        ("bounced@resend.dev", "bounced"),
        ("complained@resend.dev", "complained"),
        ("suppressed@resend.dev", "suppressed"),
        ("bounced+signup@resend.dev", "bounced"),
        ("someone@example.com", "delivered"),
    ],
)
def test_last_event_of_test_recipients(wt, key, to, event):
    sent = resend.Emails.send(mail(to))
    assert resend.Emails.get(sent["id"])["last_event"] == event


def test_scheduled_mail_is_sent_when_twin_time_passes(wt, key):
    sent = resend.Emails.send(mail("bounced@resend.dev", scheduled_at="in 30 min"))
    email = resend.Emails.get(sent["id"])
    assert email["last_event"] == "scheduled"
    assert email["scheduled_at"] is not None
    advance(wt, "1h")
    assert resend.Emails.get(sent["id"])["last_event"] == "bounced"
    # Too late to cancel or move it now.
    with pytest.raises(ValidationError):
        resend.Emails.cancel(sent["id"])
    with pytest.raises(ValidationError):
        resend.Emails.update({"id": sent["id"], "scheduled_at": "in 1 hour"})


def test_reschedule_then_cancel(wt, key):
    sent = resend.Emails.send(mail("delivered@resend.dev", scheduled_at="in 10 min"))
    updated = resend.Emails.update({"id": sent["id"], "scheduled_at": "in 2 hours"})
    assert updated["object"] == "email"
    assert updated["id"] == sent["id"]
    advance(wt, "1h")
    assert resend.Emails.get(sent["id"])["last_event"] == "scheduled"
    canceled = resend.Emails.cancel(sent["id"])
    assert (canceled["object"], canceled["id"]) == ("email", sent["id"])
    advance(wt, "2h")
    assert resend.Emails.get(sent["id"])["last_event"] == "canceled"


def test_iso_scheduled_at_from_twin_time(wt, key):
    now = wt.control("GET", "clock")["now_millis"] / 1000
    at = datetime.datetime.fromtimestamp(now + 600, tz=datetime.timezone.utc)
    sent = resend.Emails.send(mail("complained@resend.dev", scheduled_at=at.isoformat()))
    email = resend.Emails.get(sent["id"])
    assert email["last_event"] == "scheduled"
    assert email["scheduled_at"].startswith(at.strftime("%Y-%m-%dT%H:%M:%S"))
    advance(wt, "11m")
    assert resend.Emails.get(sent["id"])["last_event"] == "complained"


# --- 4. domains and API keys ----------------------------------------------


def test_domains_lifecycle(wt, key):
    created = resend.Domains.create({"name": "example.com", "region": "eu-west-1"})
    assert created["name"] == "example.com"
    assert created["status"] == "not_started"
    assert created["region"] == "eu-west-1"
    assert {r["record"] for r in created["records"]} == {"SPF", "DKIM"}
    domain_id = created["id"]

    got = resend.Domains.get(domain_id)
    assert got["object"] == "domain"
    assert got["records"][0]["type"] == "MX"

    listed = resend.Domains.list()
    assert [d["id"] for d in listed["data"]] == [domain_id]

    verified = resend.Domains.verify(domain_id)
    assert (verified["object"], verified["id"]) == ("domain", domain_id)
    assert resend.Domains.get(domain_id)["status"] == "pending"
    advance(wt, "5m")
    assert resend.Domains.get(domain_id)["status"] == "verified"

    updated = resend.Domains.update({"id": domain_id, "open_tracking": True, "click_tracking": True, "tls": "enforced"})
    assert updated["id"] == domain_id
    got = resend.Domains.get(domain_id)
    assert (got["open_tracking"], got["click_tracking"], got["tls"]) == (True, True, "enforced")

    removed = resend.Domains.remove(domain_id)
    assert removed["deleted"] is True
    with pytest.raises(ResendError) as err:
        resend.Domains.get(domain_id)
    assert (err.value.code, err.value.error_type) == (404, "not_found")


def test_domain_validation(wt, key):
    with pytest.raises(MissingRequiredFieldsError):
        resend.Domains.create({"name": ""})
    with pytest.raises(ValidationError):
        resend.Domains.create({"name": "example.com", "region": "mars-1"})
    resend.Domains.create({"name": "example.com"})
    with pytest.raises(ResendError) as err:
        resend.Domains.create({"name": "example.com"})
    assert err.value.code == 403


def test_api_keys(wt, key):
    created = resend.ApiKeys.create({"name": "CI"})
    assert created["token"].startswith("re_")
    listed = resend.ApiKeys.list()
    assert [(k["id"], k["name"]) for k in listed["data"]] == [(created["id"], "CI")]
    assert "created_at" in listed["data"][0]

    # The new key is a key of this account.
    sent = resend.Emails.send(mail("a@x.io"))
    resend.api_key = created["token"]
    assert resend.Emails.get(sent["id"])["id"] == sent["id"]
    resend.api_key = key

    removed = resend.ApiKeys.remove(created["id"])
    assert removed["deleted"] is True
    assert resend.ApiKeys.list()["data"] == []
    resend.api_key = created["token"]
    with pytest.raises(InvalidApiKeyError):
        resend.Emails.list()
    resend.api_key = key
    with pytest.raises(ResendError) as err:
        resend.ApiKeys.remove(created["id"])
    assert err.value.code == 404


def test_sending_access_keys_only_send(wt, key):
    created = resend.ApiKeys.create({"name": "sender", "permission": "sending_access"})
    resend.api_key = created["token"]
    assert resend.Emails.send(mail("a@x.io"))["id"]
    with pytest.raises(ResendError) as err:
        resend.Domains.list()
    assert (err.value.code, err.value.error_type) == (401, "restricted_api_key")


def test_api_key_validation(wt, key):
    with pytest.raises(MissingRequiredFieldsError):
        resend.ApiKeys.create({"name": ""})
    with pytest.raises(ValidationError):
        resend.ApiKeys.create({"name": "x", "permission": "root"})


# --- 5. webhooks, delivered through the host's outbound queue -------------


def _flush(wt):
    return wt.control("POST", "twins/resend/outbound/flush")


def _verify(headers, payload, secret):
    return resend.Webhooks.verify({
        "payload": payload,
        "headers": {
            "id": headers["svix-id"],
            "timestamp": headers["svix-timestamp"],
            "signature": headers["svix-signature"],
        },
        "webhook_secret": secret,
    })


def test_webhooks_crud(wt, key):
    created = resend.Webhooks.create({"endpoint": "https://example.com/hook", "events": ["email.sent"]})
    assert created["object"] == "webhook"
    assert created["signing_secret"].startswith("whsec_")
    got = resend.Webhooks.get(created["id"])
    assert (got["endpoint"], got["events"], got["status"]) == ("https://example.com/hook", ["email.sent"], "enabled")
    assert got["signing_secret"] == created["signing_secret"]
    updated = resend.Webhooks.update({"webhook_id": created["id"], "status": "disabled", "events": ["email.bounced"]})
    assert updated["id"] == created["id"]
    listed = resend.Webhooks.list()
    assert [(w["id"], w["status"], w["events"]) for w in listed["data"]] == [(created["id"], "disabled", ["email.bounced"])]
    rotated = resend.Webhooks.rotate_signing_secret(created["id"])
    assert rotated["signing_secret"] != created["signing_secret"]
    assert resend.Webhooks.remove(created["id"])["deleted"] is True
    with pytest.raises(ResendError) as err:
        resend.Webhooks.get(created["id"])
    assert err.value.code == 404
    with pytest.raises(ValidationError):
        resend.Webhooks.create({"endpoint": "https://example.com/hook", "events": ["email.nope"]})


def test_email_events_are_delivered_signed_the_svix_way(wt, key, hooks):
    hook = resend.Webhooks.create({"endpoint": hooks.url, "events": ["email.sent", "email.bounced"]})
    sent = resend.Emails.send(mail("bounced@resend.dev"))
    _flush(wt)
    # The host delivers concurrently, so arrival order is not send order.
    by_type = {json.loads(body)["type"]: (headers, body) for headers, body in hooks.received}
    assert sorted(by_type) == ["email.bounced", "email.sent"]
    headers, payload = by_type["email.bounced"]
    event = _verify(headers, payload, hook["signing_secret"])
    assert event["type"] == "email.bounced"
    assert event["data"]["email_id"] == sent["id"]
    assert event["data"]["to"] == ["bounced@resend.dev"]
    # Recomputed by hand too: HMAC-SHA256 over "{id}.{timestamp}.{body}".
    import base64
    import hashlib
    import hmac
    key_bytes = base64.b64decode(hook["signing_secret"].removeprefix("whsec_"))
    content = f"{headers['svix-id']}.{headers['svix-timestamp']}.{payload}".encode()
    expected = base64.b64encode(hmac.new(key_bytes, content, hashlib.sha256).digest()).decode()
    assert headers["svix-signature"] == f"v1,{expected}"
    with pytest.raises(ValueError):
        _verify(headers, payload, "whsec_" + base64.b64encode(b"wrong key").decode())


def test_scheduled_email_events_follow_twin_time(wt, key, hooks):
    hook = resend.Webhooks.create({"endpoint": hooks.url, "events": ["email.scheduled", "email.sent", "email.delivered"]})
    resend.Emails.send(mail("delivered@resend.dev", scheduled_at="in 30 min"))
    _flush(wt)
    assert [json.loads(b)["type"] for _, b in hooks.received] == ["email.scheduled"]
    advance(wt, "1h")
    resend.Emails.list()  # the account's next request emits what is due
    _flush(wt)
    assert sorted(json.loads(b)["type"] for _, b in hooks.received[1:]) == ["email.delivered", "email.sent"]
    # Signed with real time, so the SDK's 5-minute tolerance holds after
    # twin time moved.
    for headers, payload in hooks.received:
        assert _verify(headers, payload, hook["signing_secret"])["type"].startswith("email.")
