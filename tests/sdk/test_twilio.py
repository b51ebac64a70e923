"""The Twilio twin as the official `twilio` Python SDK sees it.

The SDK has no base-URL option, so every test hands `Client` a
`TwinHttpClient` that sends each `https://<anything>.twilio.com` request to
the twin instead. Every test uses a fresh account SID, which is a fresh,
isolated account.
"""

from __future__ import annotations

import datetime
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

import raw_http

VALID_FROM = "+15005550006"


class TwinHttpClient(TwilioHttpClient):
    """Sends every Twilio API request to a twin.

    Twilio's SDK builds absolute URLs for each product host
    (`https://api.twilio.com`, `https://verify.twilio.com`, …) and follows
    the absolute paging links the API returns, so the one place to redirect
    it is the HTTP client: this one swaps the scheme and host of any
    `https://<host>.twilio.com` URL for the twin's base URL and keeps the
    path and query. The twin serves the 2010 API and the v2 APIs side by
    side under their own path prefixes.
    """

    def __init__(self, base_url: str, **kwargs):
        super().__init__(**kwargs)
        self.base_url = base_url.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "https" and (parts.hostname or "").endswith("twilio.com"):
            url = self.base_url + urllib.parse.urlunsplit(("", "", parts.path, parts.query, ""))
        return super().request(method, url, *args, **kwargs)


def new_account() -> str:
    return "AC" + uuid.uuid4().hex


@pytest.fixture
def account():
    return new_account(), "token-" + uuid.uuid4().hex[:8]


@pytest.fixture
def client(wt, account):
    sid, token = account
    return Client(sid, token, http_client=TwinHttpClient(wt.base_url("twilio")))


def raw(wt, method, path, user=None, password=None, form=None):
    """A plain HTTP request, for what the SDK cannot express."""
    basic = None if user is None else (user, password)
    reply = raw_http.call(wt.base_url("twilio") + path, method, basic=basic, form=form)
    return reply.status, reply.json


def advance(wt, by: str) -> None:
    wt.control("POST", "clock/advance", {"by": by})


@pytest.fixture
def frozen(wt):
    """Twin time stands still, so the one-second status steps are exact."""
    wt.control("POST", "clock/freeze")
    yield
    wt.control("POST", "clock/unfreeze")


def send(client, to="+15551234567", **kw):
    kw.setdefault("from_", VALID_FROM)
    kw.setdefault("body", "Hello from the twin")
    return client.messages.create(to=to, **kw)


def refused(fn, code, status=400):
    with pytest.raises(TwilioRestException) as err:
        fn()
    assert err.value.status == status, err.value
    assert err.value.code == code, err.value
    assert err.value.msg
    return err.value


# --- auth --------------------------------------------------------------------


def test_missing_credentials_are_20003(wt, account):
    status, body = raw(wt, "GET", f"/2010-04-01/Accounts/{account[0]}/Messages.json")
    assert status == 401
    assert body == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def test_malformed_account_sid_is_refused_by_the_sdk(wt):
    bad = Client("ACnot-a-sid", "token", http_client=TwinHttpClient(wt.base_url("twilio")))
    refused(lambda: send(bad), 20003, 401)


def test_a_second_token_for_the_same_account_is_refused(wt, client, account):
    send(client)
    other = Client(account[0], "another-token", http_client=TwinHttpClient(wt.base_url("twilio")))
    refused(lambda: send(other), 20003, 401)


def test_another_accounts_url_is_404(wt, client):
    foreign = new_account()
    accounts = client.api.v2010.accounts(foreign)
    refused(lambda: accounts.messages.create(to="+15551234567", from_=VALID_FROM, body="x"), 20404, 404)


def test_api_key_and_secret_act_for_the_account(wt, client, account):
    sid, _ = account
    key = Client(
        "SK" + uuid.uuid4().hex, "key-secret", sid, http_client=TwinHttpClient(wt.base_url("twilio"))
    )
    message = send(key)
    assert message.account_sid == sid
    assert client.messages(message.sid).fetch().sid == message.sid
    service = key.verify.v2.services.create(friendly_name="Key")
    assert service.account_sid == sid


def test_the_account_resource(client, account):
    sid, token = account
    fetched = client.api.account.fetch()
    assert (fetched.sid, fetched.auth_token, fetched.status) == (sid, token, "active")
    assert fetched.friendly_name == "My first Twilio account"
    assert isinstance(fetched.date_created, datetime.datetime)
    assert client.api.account.update(friendly_name="Shop").friendly_name == "Shop"
    assert client.api.accounts(sid).fetch().friendly_name == "Shop"


# --- messages ----------------------------------------------------------------


def test_create_and_fetch(client, account):
    message = send(client, body="Hi there", media_url=["https://example.com/cat.png"])
    assert message.sid.startswith("SM") and len(message.sid) == 34
    assert message.account_sid == account[0]
    assert message.status == "queued"
    assert message.to == "+15551234567"
    assert message.from_ == VALID_FROM
    assert message.body == "Hi there"
    assert message.num_media == "1"
    assert message.num_segments == "1"
    assert message.direction == "outbound-api"
    assert message.api_version == "2010-04-01"
    assert message.price is None and message.error_code is None
    assert isinstance(message.date_created, datetime.datetime)
    assert message.date_sent is None
    assert message.uri == f"/2010-04-01/Accounts/{account[0]}/Messages/{message.sid}.json"
    fetched = client.messages(message.sid).fetch()
    assert fetched.sid == message.sid and fetched.body == "Hi there"
    media = client.messages(message.sid).media.list()
    assert [m.content_type for m in media] == ["image/png"]


def test_required_fields(client):
    refused(lambda: client.messages.create(from_=VALID_FROM, body="x", to=""), 21604)
    refused(lambda: client.messages.create(to="+15551234567", body="x"), 21603)
    err = refused(lambda: client.messages.create(to="+15551234567", from_=VALID_FROM), 21602)
    assert err.msg.endswith("Message body is required.")
    refused(lambda: send(client, to="5551234567"), 21211)
    refused(lambda: send(client, from_="not a number!"), 21212)
    refused(lambda: send(client, body="x" * 1601), 21617)


@pytest.mark.parametrize(
    "from_, to, code",
    [
        ("+15005550001", "+15551234567", 21212),
        ("+15005550007", "+15551234567", 21606),
        ("+15005550008", "+15551234567", 21611),
        (VALID_FROM, "+15005550001", 21211),
        (VALID_FROM, "+15005550002", 21612),
        (VALID_FROM, "+15005550003", 21408),
        (VALID_FROM, "+15005550004", 21610),
        (VALID_FROM, "+15005550009", 21614),
    ],
)
def test_magic_numbers(client, from_, to, code):
    err = refused(lambda: send(client, to=to, from_=from_), code)
    assert err.uri.endswith("/Messages.json")


def test_magic_numbers_store_nothing(client):
    refused(lambda: send(client, to="+15005550002"), 21612)
    assert client.messages.list() == []


def test_status_progresses_to_delivered_over_twin_time(wt, client, frozen):
    message = send(client)
    advance(wt, "1s")
    assert client.messages(message.sid).fetch().status == "sending"
    advance(wt, "1s")
    sent = client.messages(message.sid).fetch()
    assert sent.status == "sent"
    assert sent.date_sent is not None
    advance(wt, "1s")
    delivered = client.messages(message.sid).fetch()
    assert delivered.status == "delivered"
    assert delivered.price == "-0.00790" and delivered.price_unit == "USD"


def test_undelivered_and_failed_numbers(wt, client):
    undelivered = send(client, to="+15005550005")
    failed = send(client, to="+15005550010")
    advance(wt, "5s")
    u = client.messages(undelivered.sid).fetch()
    assert (u.status, u.error_code) == ("undelivered", 30003)
    f = client.messages(failed.sid).fetch()
    assert (f.status, f.error_code) == ("failed", 30008)
    assert f.error_message


def posts(hooks):
    """Status callbacks as (path, form, X-Twilio-Signature)."""
    return [
        (path, dict(urllib.parse.parse_qsl(body)), headers.get("x-twilio-signature", ""))
        for path, headers, body in hooks.deliveries
    ]


def test_status_callbacks_are_signed_with_the_auth_token(wt, client, account, hooks):
    sid, token = account
    message = send(client, status_callback=hooks.url)
    advance(wt, "5s")
    assert client.messages(message.sid).fetch().status == "delivered"
    wt.control("POST", "twins/twilio/outbound/flush")
    # The host delivers callbacks concurrently, so (as from Twilio) they may
    # arrive out of order.
    assert sorted(form["MessageStatus"] for _, form, _ in posts(hooks)) == ["delivered", "sending", "sent"]
    validator = RequestValidator(token)
    for path, form, signature in posts(hooks):
        assert path == "/hook"
        assert form["MessageSid"] == message.sid
        assert form["AccountSid"] == sid
        assert form["To"] == "+15551234567" and form["From"] == VALID_FROM
        assert validator.validate(hooks.url, form, signature)
        assert not RequestValidator("wrong-token").validate(hooks.url, form, signature)


def test_failed_callback_carries_the_error_code(wt, client, hooks):
    send(client, to="+15005550005", status_callback=hooks.url)
    advance(wt, "5s")
    client.messages.list()
    wt.control("POST", "twins/twilio/outbound/flush")
    by_status = {form["MessageStatus"]: form for _, form, _ in posts(hooks)}
    assert by_status["undelivered"]["ErrorCode"] == "30003"
    assert "ErrorCode" not in by_status["sent"]


def test_list_pages_and_filters(wt, client):
    sent = [send(client, to=f"+1555000000{i}", body=str(i)).sid for i in range(5)]
    send(client, to="+15559999999", from_="+15558888888")
    everything = client.messages.list(from_=VALID_FROM, page_size=2)
    assert [m.sid for m in everything] == sent[::-1]
    page = client.messages.page(page_size=2)
    assert len(list(page)) == 2
    assert page.next_page_url.startswith("https://api.twilio.com/2010-04-01/Accounts/")
    second = page.next_page()
    assert len(list(second)) == 2
    assert second.previous_page() is not None
    assert [m.body for m in client.messages.list(to="+15550000003")] == ["3"]
    assert len(client.messages.list(limit=3)) == 3


def test_list_by_date_sent(wt, client, frozen):
    message = send(client)
    assert client.messages.list(date_sent=datetime.date.today()) == []  # not sent yet
    advance(wt, "3s")
    fetched = client.messages(message.sid).fetch()
    day = fetched.date_sent.date()
    assert [m.sid for m in client.messages.list(date_sent=fetched.date_sent)] == [message.sid]
    after = fetched.date_sent - datetime.timedelta(seconds=1)
    assert [m.sid for m in client.messages.list(date_sent_after=after)] == [message.sid]
    before = datetime.datetime.combine(day - datetime.timedelta(days=1), datetime.time())
    assert client.messages.list(date_sent_before=before) == []


def test_raw_list_shape_has_one_records_key(wt, client, account):
    sid, token = account
    send(client)
    status, body = raw(wt, "GET", f"/2010-04-01/Accounts/{sid}/Messages.json?PageSize=1", sid, token)
    assert status == 200
    assert set(body) == {
        "messages", "page", "page_size", "start", "end", "uri",
        "first_page_uri", "next_page_uri", "previous_page_uri",
    }
    assert body["uri"] == f"/2010-04-01/Accounts/{sid}/Messages.json?PageSize=1&Page=0"


def test_redact_cancel_and_delete(wt, client, frozen):
    message = send(client)
    refused(lambda: client.messages(message.sid).update(body=""), 20009)
    refused(lambda: client.messages(message.sid).delete(), 20009)
    advance(wt, "5s")
    refused(lambda: client.messages(message.sid).update(status="canceled"), 30409)
    redacted = client.messages(message.sid).update(body="")
    assert redacted.body == "" and redacted.status == "delivered"
    assert client.messages(message.sid).delete() is True
    refused(lambda: client.messages(message.sid).fetch(), 20404, 404)


def test_scheduled_message_can_be_canceled(wt, client):
    service = "MG" + uuid.uuid4().hex
    now = datetime.datetime.fromtimestamp(wt.control("GET", "clock")["now_millis"] / 1000, datetime.timezone.utc)
    message = client.messages.create(
        to="+15551234567",
        messaging_service_sid=service,
        body="later",
        schedule_type="fixed",
        send_at=now + datetime.timedelta(hours=1),
    )
    assert message.status == "scheduled"
    canceled = client.messages(message.sid).update(status="canceled")
    assert canceled.status == "canceled"
    advance(wt, "2h")
    assert client.messages(message.sid).fetch().status == "canceled"


def test_messaging_service_alone_is_accepted_then_delivered(wt, client, frozen):
    service = "MG" + uuid.uuid4().hex
    message = client.messages.create(to="+15551234567", messaging_service_sid=service, body="hi")
    assert (message.status, message.messaging_service_sid, message.from_) == ("accepted", service, None)
    assert client.messages(message.sid).fetch().status == "queued"
    advance(wt, "3s")
    assert client.messages(message.sid).fetch().status == "delivered"
    refused(lambda: client.messages.create(to="+15551234567", messaging_service_sid="MG1", body="x"), 21705)


# --- verify ------------------------------------------------------------------


def verify_code(wt, account_sid, service_sid, to):
    key = f"acct/{account_sid}/verify/{service_sid}/code/{to}"
    for entry in wt.control("GET", "twins/twilio/state")["entries"]:
        if entry["key"] == key:
            return entry["text"]
    raise AssertionError(f"no code at {key}")


def test_verify_services_crud(client):
    service = client.verify.v2.services.create(friendly_name="My App", code_length=8)
    assert service.sid.startswith("VA") and service.code_length == 8
    assert client.verify.v2.services(service.sid).fetch().friendly_name == "My App"
    updated = client.verify.v2.services(service.sid).update(friendly_name="Renamed", code_length=4)
    assert (updated.friendly_name, updated.code_length) == ("Renamed", 4)
    other = client.verify.v2.services.create(friendly_name="Other")
    assert [s.sid for s in client.verify.v2.services.list(page_size=1)] == [service.sid, other.sid]
    assert client.verify.v2.services(other.sid).delete() is True
    refused(lambda: client.verify.v2.services(other.sid).fetch(), 20404, 404)
    refused(lambda: client.verify.v2.services.create(friendly_name="x", code_length=3), 60200)


def test_verify_flow_with_the_code_from_state(wt, client, account):
    service = client.verify.v2.services.create(friendly_name="Login")
    verifications = client.verify.v2.services(service.sid)
    v = verifications.verifications.create(to="+15551234567", channel="sms")
    assert (v.status, v.valid, v.channel) == ("pending", False, "sms")
    code = verify_code(wt, account[0], service.sid, "+15551234567")
    assert len(code) == 6 and code.isdigit()
    wrong = "000000" if code != "000000" else "111111"
    miss = verifications.verification_checks.create(to="+15551234567", code=wrong)
    assert (miss.status, miss.valid) == ("pending", False)
    ok = verifications.verification_checks.create(to="+15551234567", code=code)
    assert (ok.status, ok.valid, ok.sid) == ("approved", True, v.sid)
    assert verifications.verifications(v.sid).fetch().status == "approved"
    refused(lambda: verifications.verification_checks.create(to="+15551234567", code=code), 20404, 404)


def test_verify_max_attempts_and_expiry(wt, client, account):
    service = client.verify.v2.services.create(friendly_name="Login")
    verifications = client.verify.v2.services(service.sid)
    verifications.verifications.create(to="+15557654321", channel="call")
    code = verify_code(wt, account[0], service.sid, "+15557654321")
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        verifications.verification_checks.create(to="+15557654321", code=wrong)
    refused(lambda: verifications.verification_checks.create(to="+15557654321", code=code), 60202, 429)
    v = verifications.verifications.create(to="a@example.com", channel="email")
    code = verify_code(wt, account[0], service.sid, "a@example.com")
    advance(wt, "10m")
    refused(lambda: verifications.verification_checks.create(to="a@example.com", code=code), 20404, 404)
    refused(lambda: verifications.verifications(v.sid).fetch(), 20404, 404)


def test_verify_cancel(client):
    service = client.verify.v2.services.create(friendly_name="Login")
    verifications = client.verify.v2.services(service.sid)
    v = verifications.verifications.create(to="+15551112222", channel="sms")
    assert verifications.verifications(v.sid).update(status="canceled").status == "canceled"
    refused(lambda: verifications.verification_checks.create(to="+15551112222", code="123456"), 20404, 404)
    refused(lambda: verifications.verifications.create(to="+15551112222", channel="pigeon"), 60200)
