"""The Stripe twin as the official `stripe` Python SDK sees it.

Every test uses a fresh secret key, which is a fresh, isolated account.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid

import pytest
import stripe


def new_key() -> str:
    return f"sk_test_{uuid.uuid4().hex}"


@pytest.fixture
def client(wt):
    return stripe.StripeClient(new_key(), base_addresses={"api": wt.base_url("stripe")})


def raw(wt, method, path, key, body=None, headers=None, basic=False):
    """A plain HTTP request, for what the SDK cannot express or hides."""
    data = None if body is None else body.encode()
    req = urllib.request.Request(wt.base_url("stripe") + path, data=data, method=method)
    if key is not None:
        if basic:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{key}:".encode()).decode())
        else:
            req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), json.loads(err.read())


# --- 1. wire ---------------------------------------------------------------


def test_bad_and_missing_keys_are_401(wt):
    bad = stripe.StripeClient("sk_live_nope", base_addresses={"api": wt.base_url("stripe")})
    with pytest.raises(stripe.AuthenticationError) as err:
        bad.v1.customers.list()
    assert err.value.http_status == 401
    status, _, body = raw(wt, "GET", "/v1/customers", None)
    assert status == 401
    assert body["error"]["type"] == "invalid_request_error"
    assert "API key" in body["error"]["message"]


def test_basic_auth_and_headers(wt):
    key = new_key()
    status, headers, created = raw(wt, "POST", "/v1/customers", key, "email=basic%40x.io", basic=True)
    assert status == 200
    headers = {k.lower(): v for k, v in headers.items()}
    assert headers["request-id"].startswith("req_")
    assert headers["stripe-version"] == stripe.api_version
    status, headers, got = raw(wt, "GET", f"/v1/customers/{created['id']}", key, headers={"Stripe-Version": "2020-08-27"})
    assert status == 200 and got["email"] == "basic@x.io"
    assert {k.lower(): v for k, v in headers.items()}["stripe-version"] == "2020-08-27"


def test_accounts_are_isolated(wt):
    a = stripe.StripeClient(new_key(), base_addresses={"api": wt.base_url("stripe")})
    b = stripe.StripeClient(new_key(), base_addresses={"api": wt.base_url("stripe")})
    cus = a.v1.customers.create({"email": "a@x.io"})
    assert [c.id for c in a.v1.customers.list().data] == [cus.id]
    assert b.v1.customers.list().data == []
    with pytest.raises(stripe.InvalidRequestError) as err:
        b.v1.customers.retrieve(cus.id)
    assert err.value.code == "resource_missing"


def test_global_api_base_style(wt):
    saved = (stripe.api_key, stripe.api_base)
    try:
        stripe.api_key = new_key()
        stripe.api_base = wt.base_url("stripe")
        cus = stripe.Customer.create(email="global@x.io", metadata={"a": "1"})
        assert stripe.Customer.retrieve(cus.id).metadata["a"] == "1"
        assert [c.id for c in stripe.Customer.list().data] == [cus.id]
    finally:
        stripe.api_key, stripe.api_base = saved


def test_errors_have_real_shapes(client):
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.retrieve("cus_missing")
    assert err.value.http_status == 404
    assert err.value.code == "resource_missing"
    assert err.value.param == "id"
    assert err.value.user_message is None or "cus_missing" in str(err.value)
    assert "No such customer: 'cus_missing'" in str(err.value)
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create({"bogus": "x"})
    assert (err.value.http_status, err.value.code, err.value.param) == (400, "parameter_unknown", "bogus")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create({"invoice_settings": {"bogus": "x"}})
    assert (err.value.code, err.value.param) == ("parameter_unknown", "invoice_settings[bogus]")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create({"currency": "usd"})
    assert (err.value.code, err.value.param) == ("parameter_missing", "amount")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create({"amount": "ten", "currency": "usd"})
    assert err.value.code == "parameter_invalid_integer"


def test_list_pagination(client, wt):
    ids = [client.v1.customers.create({"name": f"c{i}"}).id for i in range(7)]
    page = client.v1.customers.list({"limit": 3})
    assert page.object == "list" and page.url == "/v1/customers" and page.has_more
    assert [c.id for c in page.data] == ids[::-1][:3]
    assert [c.id for c in page.auto_paging_iter()] == ids[::-1]
    after = client.v1.customers.list({"limit": 2, "starting_after": ids[3]})
    assert [c.id for c in after.data] == [ids[2], ids[1]]
    before = client.v1.customers.list({"limit": 2, "ending_before": ids[3]})
    assert [c.id for c in before.data] == [ids[5], ids[4]]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.list({"limit": 101})
    # Percent-encoded brackets in a raw GET query.
    key = client._requestor.api_key
    status, _, body = raw(wt, "GET", "/v1/customers?limit=1&expand%5B%5D=data.invoice_settings.default_payment_method", key)
    assert status == 200 and len(body["data"]) == 1


def test_idempotent_replay(client, wt):
    key = str(uuid.uuid4())
    first = client.v1.customers.create({"email": "i@x.io"}, {"idempotency_key": key})
    again = client.v1.customers.create({"email": "i@x.io"}, {"idempotency_key": key})
    assert first.id == again.id
    assert again.last_response.headers.get("Idempotent-Replayed") == "true"
    assert len(client.v1.customers.list().data) == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create({"email": "other@x.io"}, {"idempotency_key": key})
    api_key = client._requestor.api_key
    status, headers, body = raw(wt, "POST", "/v1/customers", api_key, "email=i%40x.io", {"Idempotency-Key": key})
    assert status == 200 and body["id"] == first.id
    assert {k.lower(): v for k, v in headers.items()}["idempotent-replayed"] == "true"
    # Validation failures are not stored: the key is still free.
    k2 = str(uuid.uuid4())
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create({"nope": "1"}, {"idempotency_key": k2})
    status, headers, _ = raw(wt, "POST", "/v1/customers", api_key, "nope=1", {"Idempotency-Key": k2})
    assert status == 400 and "idempotent-replayed" not in {k.lower() for k in headers}


# --- 2. customers ------------------------------------------------------------


def test_customer_crud_metadata_and_deleted_stub(client):
    cus = client.v1.customers.create({"email": "a@x.io", "name": "Ann", "metadata": {"k": "v", "j": "w"}})
    assert cus.id.startswith("cus_") and cus.object == "customer" and cus.livemode is False
    assert isinstance(cus.created, int)
    got = client.v1.customers.retrieve(cus.id)
    assert got.to_dict() == cus.to_dict()
    upd = client.v1.customers.update(cus.id, {"name": "Bo", "metadata": {"k": ""}})
    assert upd.name == "Bo" and upd.metadata.to_dict() == {"j": "w"}
    cleared = client.v1.customers.update(cus.id, {"metadata": ""})
    assert cleared.metadata.to_dict() == {}
    deleted = client.v1.customers.delete(cus.id)
    assert deleted.deleted is True and deleted.id == cus.id
    stub = client.v1.customers.retrieve(cus.id)
    assert stub.to_dict() == {"id": cus.id, "object": "customer", "deleted": True}
    assert client.v1.customers.list().data == []


def test_customer_list_filter_and_search(client):
    a = client.v1.customers.create({"email": "a@x.io", "name": "Ann", "metadata": {"tier": "gold"}})
    b = client.v1.customers.create({"email": "b@x.io", "name": "Bob", "metadata": {"tier": "gold"}})
    client.v1.customers.create({"email": "c@x.io", "name": "Cy"})
    assert [c.id for c in client.v1.customers.list({"email": "b@x.io"}).data] == [b.id]
    res = client.v1.customers.search({"query": "email:'a@x.io'"})
    assert res.object == "search_result" and res.url == "/v1/customers/search"
    assert [c.id for c in res.data] == [a.id]
    res = client.v1.customers.search({"query": "metadata['tier']:'gold' AND name:'Bob'"})
    assert [c.id for c in res.data] == [b.id]
    res = client.v1.customers.search({"query": "metadata['tier']:'gold'", "limit": 1})
    assert res.has_more and res.next_page
    assert [c.id for c in res.auto_paging_iter()] == [b.id, a.id]


# --- 3. products and prices --------------------------------------------------


def test_products_and_prices(client):
    prod = client.v1.products.create({"name": "Gold"})
    assert prod.id.startswith("prod_") and prod.active
    price = client.v1.prices.create({
        "product": prod.id, "unit_amount": 1500, "currency": "usd",
        "recurring": {"interval": "month", "interval_count": 3}, "lookup_key": "gold",
    })
    assert price.id.startswith("price_") and price.type == "recurring"
    assert price.recurring.interval == "month" and price.recurring.interval_count == 3
    one = client.v1.prices.create({"product": prod.id, "unit_amount": 99, "currency": "eur"})
    assert one.type == "one_time" and one.recurring is None
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.update(price.id, {"unit_amount": 1})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.prices.create({"product": prod.id, "unit_amount": 1, "currency": "usd", "lookup_key": "gold"})
    moved = client.v1.prices.create({"product": prod.id, "unit_amount": 2000, "currency": "usd",
                                     "lookup_key": "gold", "transfer_lookup_key": True})
    assert [p.id for p in client.v1.prices.list({"lookup_keys": ["gold"]}).data] == [moved.id]
    assert client.v1.prices.retrieve(price.id).lookup_key is None
    client.v1.prices.update(one.id, {"active": False})
    assert {p.id for p in client.v1.prices.list({"active": True, "product": prod.id}).data} == {price.id, moved.id}
    expanded = client.v1.prices.retrieve(price.id, {"expand": ["product"]})
    assert expanded.product.name == "Gold"
    listed = client.v1.prices.list({"expand": ["data.product"], "limit": 1})
    assert listed.data[0].product.id == prod.id


# --- 4. payment methods --------------------------------------------------------


def test_payment_methods_attach_detach_list(client):
    cus = client.v1.customers.create({"email": "pm@x.io"})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": cus.id})
    assert pm.id.startswith("pm_") and pm.id != "pm_card_visa"
    assert (pm.card.brand, pm.card.last4) == ("visa", "4242") and pm.customer == cus.id
    created = client.v1.payment_methods.create({"type": "card", "card": {"token": "tok_visa"}})
    client.v1.payment_methods.attach(created.id, {"customer": cus.id})
    listed = client.v1.payment_methods.list({"customer": cus.id, "type": "card"})
    assert {p.id for p in listed.data} == {pm.id, created.id}
    detached = client.v1.payment_methods.detach(pm.id)
    assert detached.customer is None
    assert [p.id for p in client.v1.customers.payment_methods.list(cus.id).data] == [created.id]
    mc = client.v1.payment_methods.attach("pm_card_mastercard", {"customer": cus.id})
    assert (mc.card.brand, mc.card.last4) == ("mastercard", "4444")


# --- 5. payment intents, charges, refunds --------------------------------------


def test_payment_intent_succeeds_with_charge(client):
    cus = client.v1.customers.create({"email": "pay@x.io"})
    pi = client.v1.payment_intents.create({"amount": 2000, "currency": "usd", "customer": cus.id})
    assert pi.id.startswith("pi_") and pi.status == "requires_payment_method"
    pi = client.v1.payment_intents.update(pi.id, {"payment_method": "pm_card_visa", "metadata": {"order": "1"}})
    assert pi.status == "requires_confirmation"
    pi = client.v1.payment_intents.confirm(pi.id, {"expand": ["latest_charge", "customer"]})
    assert pi.status == "succeeded" and pi.amount_received == 2000
    assert pi.latest_charge.id.startswith("ch_") and pi.latest_charge.paid
    assert pi.customer.email == "pay@x.io"
    deep = client.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge.payment_intent.customer"]})
    assert deep.latest_charge.payment_intent.customer.id == cus.id
    charge = client.v1.charges.retrieve(pi.latest_charge.id)
    assert charge.amount == 2000 and charge.payment_intent == pi.id
    assert [c.id for c in client.v1.charges.list({"customer": cus.id}).data] == [charge.id]
    assert [p.id for p in client.v1.payment_intents.list({"customer": cus.id}).data] == [pi.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.retrieve(pi.id, {"expand": ["latest_charge.payment_intent.customer.x.y"]})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.retrieve(pi.id, {"expand": ["currency"]})
    listed = client.v1.payment_intents.list({"expand": ["data.customer", "data.latest_charge"]})
    assert listed.data[0].customer.email == "pay@x.io"
    assert listed.data[0].latest_charge.amount == 2000


@pytest.mark.parametrize("pm, decline_code", [
    ("pm_card_visa_chargeDeclined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc"),
    ("tok_chargeDeclined", "generic_decline"),
])
def test_declines_raise_card_error(client, pm, decline_code):
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_intents.create({"amount": 500, "currency": "usd", "payment_method": pm, "confirm": True})
    e = err.value
    assert e.http_status == 402
    assert e.error.decline_code == decline_code
    assert e.error.type == "card_error"
    pi = e.error.payment_intent
    assert pi.status == "requires_payment_method"
    stored = client.v1.payment_intents.retrieve(pi.id)
    assert stored.status == "requires_payment_method"
    assert stored.last_payment_error.decline_code == decline_code
    assert client.v1.charges.retrieve(stored.latest_charge).status == "failed"


def test_generic_decline_code_is_card_declined(client):
    with pytest.raises(stripe.CardError) as err:
        client.v1.payment_intents.create({"amount": 500, "currency": "usd",
                                          "payment_method": "pm_card_visa_chargeDeclined", "confirm": True})
    assert err.value.code == "card_declined"


def test_manual_capture_and_cancel(client):
    pi = client.v1.payment_intents.create({"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa",
                                           "capture_method": "manual", "confirm": True})
    assert pi.status == "requires_capture" and pi.amount_capturable == 1000
    pi = client.v1.payment_intents.capture(pi.id, {"amount_to_capture": 600})
    assert pi.status == "succeeded" and pi.amount_received == 600
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.cancel(pi.id)
    assert err.value.code == "payment_intent_unexpected_state"
    other = client.v1.payment_intents.create({"amount": 300, "currency": "usd"})
    canceled = client.v1.payment_intents.cancel(other.id, {"cancellation_reason": "abandoned"})
    assert canceled.status == "canceled" and canceled.cancellation_reason == "abandoned"


def test_refunds(client):
    pi = client.v1.payment_intents.create({"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True})
    partial = client.v1.refunds.create({"charge": pi.latest_charge, "amount": 400})
    assert partial.id.startswith("re_") and partial.amount == 400 and partial.status == "succeeded"
    ch = client.v1.charges.retrieve(pi.latest_charge)
    assert ch.amount_refunded == 400 and ch.refunded is False
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create({"charge": pi.latest_charge, "amount": 700})
    rest = client.v1.refunds.create({"payment_intent": pi.id})
    assert rest.amount == 600
    ch = client.v1.charges.retrieve(pi.latest_charge)
    assert ch.amount_refunded == 1000 and ch.refunded is True
    assert client.v1.refunds.retrieve(partial.id).amount == 400
    assert [r.id for r in client.v1.refunds.list({"charge": ch.id}).data] == [rest.id, partial.id]


def test_amount_minimum(client):
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.payment_intents.create({"amount": 10, "currency": "usd"})
    assert err.value.code == "amount_too_small" and err.value.param == "amount"


def test_setup_intents(client):
    cus = client.v1.customers.create({"email": "si@x.io"})
    si = client.v1.setup_intents.create({"customer": cus.id, "payment_method": "pm_card_visa"})
    assert si.id.startswith("seti_") and si.status == "requires_confirmation"
    si = client.v1.setup_intents.confirm(si.id, {"expand": ["payment_method"]})
    assert si.status == "succeeded" and si.payment_method.customer == cus.id
    with pytest.raises(stripe.CardError) as err:
        client.v1.setup_intents.create({"payment_method": "pm_card_chargeDeclinedInsufficientFunds", "confirm": True})
    assert err.value.error.decline_code == "insufficient_funds"
    assert err.value.error.setup_intent.status == "requires_payment_method"
    assert [s.id for s in client.v1.setup_intents.list({"customer": cus.id}).data] == [si.id]


def test_created_filter(client):
    first = client.v1.customers.create({"name": "a"})
    assert [c.id for c in client.v1.customers.list({"created": {"gte": first.created}}).data] == [first.id]
    assert client.v1.customers.list({"created": {"gt": first.created + 1000}}).data == []


# --- 6. events and webhook endpoints -------------------------------------------


def test_events_recorded(client):
    cus = client.v1.customers.create({"email": "ev@x.io"})
    pi = client.v1.payment_intents.create({"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True})
    client.v1.refunds.create({"charge": pi.latest_charge})
    with pytest.raises(stripe.CardError):
        client.v1.payment_intents.create({"amount": 100, "currency": "usd", "payment_method": "pm_card_visa_chargeDeclined", "confirm": True})
    types = [e.type for e in client.v1.events.list({"limit": 100}).auto_paging_iter()]
    for t in ["customer.created", "payment_intent.succeeded", "charge.succeeded",
              "charge.refunded", "payment_intent.payment_failed"]:
        assert t in types
    created = client.v1.events.list({"type": "customer.created"}).data
    assert len(created) == 1 and created[0].data.object.id == cus.id
    assert created[0].id.startswith("evt_")
    assert client.v1.events.retrieve(created[0].id).type == "customer.created"


def test_webhook_endpoints(client):
    we = client.v1.webhook_endpoints.create({"url": "https://example.com/hook", "enabled_events": ["charge.succeeded"]})
    assert we.id.startswith("we_") and we.secret.startswith("whsec_")
    got = client.v1.webhook_endpoints.retrieve(we.id)
    assert got.url == "https://example.com/hook" and "secret" not in got
    assert [w.id for w in client.v1.webhook_endpoints.list().data] == [we.id]
    assert client.v1.webhook_endpoints.delete(we.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.webhook_endpoints.retrieve(we.id)


# --- webhooks delivered through the host's outbound queue ---------------------

class _Hooks:
    """A webhook receiver on loopback that keeps (headers, body) per delivery."""

    def __init__(self):
        import http.server
        import threading

        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                # Header names are case-insensitive; keep them lower-case.
                headers = {k.lower(): v for k, v in self.headers.items()}
                received.append((headers, body.decode()))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self):
        self.server.shutdown()


@pytest.fixture
def hooks():
    receiver = _Hooks()
    yield receiver
    receiver.close()


def _flush(wt):
    return wt.control("POST", "twins/stripe/outbound/flush")["deliveries"]


def test_events_are_delivered_signed_and_verify_with_the_sdk(client, wt, hooks):
    we = client.v1.webhook_endpoints.create({"url": hooks.url, "enabled_events": ["customer.created"]})
    customer = client.v1.customers.create({"email": "hook@example.com"})
    client.v1.products.create({"name": "not subscribed"})  # product.created: not sent
    _flush(wt)
    assert len(hooks.received) == 1
    headers, payload = hooks.received[0]
    event = stripe.Webhook.construct_event(payload, headers["stripe-signature"], we.secret)
    assert event.type == "customer.created"
    assert event.data.object.id == customer.id
    assert event.pending_webhooks == 1
    # A wrong secret does not verify.
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, headers["stripe-signature"], "whsec_wrong")


def test_signatures_use_real_time_even_when_twin_time_moves(client, wt, hooks):
    we = client.v1.webhook_endpoints.create({"url": hooks.url, "enabled_events": ["*"]})
    wt.control("POST", "clock/advance", {"by": "2d"})
    try:
        client.v1.customers.create({"name": "later"})
        _flush(wt)
    finally:
        wt.control("POST", "clock/advance", {"to": int(__import__("time").time() * 1000)})
    headers, payload = hooks.received[-1]
    # The SDK's default tolerance is 300 s of real time.
    event = stripe.Webhook.construct_event(payload, headers["stripe-signature"], we.secret)
    assert event.type == "customer.created"


def test_failed_requests_and_other_accounts_send_nothing(client, wt, hooks):
    client.v1.webhook_endpoints.create({"url": hooks.url, "enabled_events": ["*"]})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.create({"bogus_param": "x"})
    other = stripe.StripeClient(new_key(), base_addresses={"api": wt.base_url("stripe")})
    other.v1.customers.create({"name": "other account"})
    _flush(wt)
    assert hooks.received == []
