"""The Stripe twin as the official `stripe` Python SDK sees it.

Every test uses a fresh secret key, which is a fresh, isolated account.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid

import pytest
import stripe

import raw_http


def new_key() -> str:
    return f"sk_test_{uuid.uuid4().hex}"


@pytest.fixture
def client(wt):
    return stripe.StripeClient(new_key(), base_addresses={"api": wt.base_url("stripe")})


def raw(wt, method, path, key, body=None, headers=None, basic=False):
    """A plain HTTP request, for what the SDK cannot express or hides."""
    credentials = {"basic": (key, "")} if basic and key is not None else {"bearer": key}
    url = wt.base_url("stripe") + path
    reply = raw_http.call(url, method, form=body, headers=headers, **credentials)
    return reply.status, dict(reply.headers), reply.json


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


# --- 7. billing: subscriptions, invoices, checkout, test clocks ---------------


def _billing_customer(client, card="pm_card_visa", **extra):
    """A monthly $10 price and a customer whose invoice default is `card`."""
    price = client.v1.prices.create({"currency": "usd", "unit_amount": 1000,
                                     "recurring": {"interval": "month"}, "product_data": {"name": "Gold"}})
    cus = client.v1.customers.create({"email": "billing@x.io", **extra})
    pm = client.v1.payment_methods.attach(card, {"customer": cus.id})
    client.v1.customers.update(cus.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return price, cus


def test_subscription_create_list_update_cancel(client):
    price, cus = _billing_customer(client)
    sub = client.v1.subscriptions.create({
        "customer": cus.id, "items": [{"price": price.id, "quantity": 2}],
        "metadata": {"plan": "gold"}, "expand": ["latest_invoice.payments"],
    })
    assert sub.id.startswith("sub_") and sub.object == "subscription" and sub.status == "active"
    item = sub["items"].data[0]
    assert item.id.startswith("si_") and item.quantity == 2 and item.price.id == price.id
    assert item.current_period_end > item.current_period_start == sub.start_date
    invoice = sub.latest_invoice
    assert invoice.id.startswith("in_") and invoice.status == "paid"
    assert (invoice.amount_due, invoice.amount_paid, invoice.amount_remaining) == (2000, 2000, 0)
    assert invoice.parent.subscription_details.subscription == sub.id
    assert invoice.lines.data[0].pricing.price_details.price == price.id
    pi = client.v1.payment_intents.retrieve(invoice.payments.data[0].payment.payment_intent)
    assert pi.status == "succeeded" and pi.amount == 2000 and pi.customer == cus.id
    assert [s.id for s in client.v1.subscriptions.list({"customer": cus.id}).data] == [sub.id]
    assert [s.id for s in client.v1.subscriptions.list({"price": price.id, "status": "active"}).data] == [sub.id]
    assert client.v1.subscriptions.list({"status": "trialing"}).data == []
    items = client.v1.subscription_items.list({"subscription": sub.id})
    assert [i.id for i in items.data] == [item.id]
    assert client.v1.subscription_items.update(item.id, {"quantity": 3}).quantity == 3

    upd = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True, "metadata": {"k": "v"}})
    assert upd.cancel_at_period_end is True and upd.cancel_at == item.current_period_end
    assert upd.status == "active" and upd.metadata.to_dict() == {"plan": "gold", "k": "v"}
    canceled = client.v1.subscriptions.cancel(sub.id)
    assert canceled.status == "canceled" and canceled.ended_at is not None
    assert client.v1.subscriptions.list().data == []
    assert [s.id for s in client.v1.subscriptions.list({"status": "canceled"}).data] == [sub.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.subscriptions.update(sub.id, {"description": "too late"})
    types = {e.type for e in client.v1.events.list({"limit": 100}).auto_paging_iter()}
    assert {"customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
            "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"} <= types


def test_subscription_errors(client):
    price, cus = _billing_customer(client)
    one_time = client.v1.prices.create({"currency": "usd", "unit_amount": 5, "product_data": {"name": "x"}})
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create({"customer": cus.id, "items": [{"price": one_time.id}]})
    assert err.value.param == "items[0][price]"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.create({"customer": cus.id})
    assert err.value.code == "parameter_missing"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.subscriptions.retrieve("sub_missing")
    assert err.value.http_status == 404 and err.value.code == "resource_missing"


def test_trial_and_incomplete_subscriptions(client):
    price, cus = _billing_customer(client)
    trial = client.v1.subscriptions.create({"customer": cus.id, "items": [{"price": price.id}],
                                            "trial_period_days": 14, "expand": ["latest_invoice"]})
    assert trial.status == "trialing" and trial.trial_end - trial.trial_start == 14 * 86400
    assert trial.latest_invoice.amount_due == 0 and trial.latest_invoice.status == "paid"
    assert trial["items"].data[0].current_period_end == trial.trial_end

    _, bad = _billing_customer(client, card="pm_card_chargeDeclinedInsufficientFunds")
    sub = client.v1.subscriptions.create({"customer": bad.id, "items": [{"price": price.id}],
                                          "expand": ["latest_invoice"]})
    assert sub.status == "incomplete" and sub.latest_invoice.status == "open"
    with pytest.raises(stripe.CardError) as err:
        client.v1.invoices.pay(sub.latest_invoice.id)
    assert err.value.http_status == 402 and err.value.error.decline_code == "insufficient_funds"
    paid = client.v1.invoices.pay(sub.latest_invoice.id, {"payment_method": "pm_card_visa"})
    assert paid.status == "paid" and paid.amount_paid == 1000
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"
    with pytest.raises(stripe.CardError):
        client.v1.subscriptions.create({"customer": bad.id, "items": [{"price": price.id}],
                                        "payment_behavior": "error_if_incomplete"})
    assert len(client.v1.subscriptions.list({"customer": bad.id}).data) == 1


def test_invoices_and_invoice_items(client, wt):
    cus = client.v1.customers.create({"email": "inv@x.io"})
    ii = client.v1.invoice_items.create({"customer": cus.id, "amount": 500, "currency": "usd",
                                         "description": "Setup fee"})
    assert ii.id.startswith("ii_") and ii.object == "invoiceitem" and ii.invoice is None
    pin = client.v1.prices.create({"currency": "usd", "unit_amount": 250, "product_data": {"name": "Pin"}})
    client.v1.invoice_items.create({"customer": cus.id, "pricing": {"price": pin.id}, "quantity": 2})
    assert len(client.v1.invoice_items.list({"customer": cus.id, "pending": True}).data) == 2
    assert client.v1.invoice_items.update(ii.id, {"description": "Setup"}).description == "Setup"

    inv = client.v1.invoices.create({"customer": cus.id, "pending_invoice_items_behavior": "include"})
    assert inv.status == "draft" and inv.number is None
    assert (inv.subtotal, inv.total, inv.amount_due, inv.amount_remaining) == (1000, 1000, 1000, 1000)
    assert client.v1.invoice_items.list({"customer": cus.id, "pending": True}).data == []
    lines = list(client.v1.invoices.line_items.list(inv.id, {"limit": 1}).auto_paging_iter())
    assert sorted(line.amount for line in lines) == [500, 500]
    inv = client.v1.invoices.update(inv.id, {"description": "Thanks", "metadata": {"o": "1"}})
    assert inv.description == "Thanks"
    inv = client.v1.invoices.finalize_invoice(inv.id)
    assert inv.status == "open" and inv.number.endswith("-0001") and inv.status_transitions.finalized_at
    assert inv.hosted_invoice_url.startswith(wt.base_url("stripe"))
    with urllib.request.urlopen(inv.hosted_invoice_url, timeout=30) as page:
        assert inv.number in page.read().decode()
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.update(inv.id, {"collection_method": "send_invoice", "days_until_due": 3})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.delete(ii.id)
    with pytest.raises(stripe.CardError) as err:
        client.v1.invoices.pay(inv.id, {"payment_method": "pm_card_visa_chargeDeclined"})
    assert err.value.code == "card_declined"
    assert client.v1.invoices.retrieve(inv.id).status == "open"
    paid = client.v1.invoices.pay(inv.id, {"payment_method": "pm_card_visa", "expand": ["payments"]})
    assert paid.status == "paid" and paid.amount_paid == 1000 and paid.amount_remaining == 0
    assert paid.payments.data[0].amount_paid == 1000
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.void_invoice(inv.id)

    second = client.v1.invoices.create({"customer": cus.id})
    client.v1.invoice_items.create({"customer": cus.id, "amount": 300, "currency": "usd", "invoice": second.id})
    assert client.v1.invoices.retrieve(second.id).total == 300
    second = client.v1.invoices.finalize_invoice(second.id)
    assert second.number.endswith("-0002")
    assert client.v1.invoices.mark_uncollectible(second.id).status == "uncollectible"
    assert client.v1.invoices.void_invoice(second.id).status == "void"
    draft = client.v1.invoices.create({"customer": cus.id})
    assert client.v1.invoices.delete(draft.id).deleted is True
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoices.delete(second.id)
    assert [i.id for i in client.v1.invoices.list({"customer": cus.id, "status": "void"}).data] == [second.id]
    assert [i.id for i in client.v1.invoices.list({"customer": cus.id}).data] == [second.id, inv.id]
    types = {e.type for e in client.v1.events.list({"limit": 100}).auto_paging_iter()}
    assert {"invoiceitem.created", "invoice.finalized", "invoice.payment_failed", "invoice.paid",
            "invoice.voided", "invoice.marked_uncollectible", "invoice.deleted"} <= types


def _complete(client, session_id, **params):
    resp = client.raw_request("post", f"/v1/test_helpers/checkout/sessions/{session_id}/complete", **params)
    return client.deserialize(resp, api_mode="V1")


def test_checkout_payment_session(client, wt):
    mug = client.v1.prices.create({"currency": "usd", "unit_amount": 700, "product_data": {"name": "Mug"}})
    cs = client.v1.checkout.sessions.create({
        "mode": "payment", "success_url": "https://example.com/ok?s={CHECKOUT_SESSION_ID}",
        "line_items": [{"price": mug.id, "quantity": 3},
                       {"price_data": {"currency": "usd", "unit_amount": 150, "product_data": {"name": "Card"}},
                        "quantity": 1}],
        "customer_email": "buyer@x.io", "metadata": {"order": "42"},
    })
    assert cs.id.startswith("cs_test_") and cs.object == "checkout.session"
    assert (cs.status, cs.payment_status, cs.amount_total) == ("open", "unpaid", 2250)
    assert cs.url.startswith(wt.base_url("stripe"))
    with urllib.request.urlopen(cs.url, timeout=30) as page:
        assert page.status == 200 and "Mug" in page.read().decode()
    items = client.v1.checkout.sessions.line_items.list(cs.id)
    assert [(i.description, i.quantity, i.amount_total) for i in items.data] == [("Mug", 3, 2100), ("Card", 1, 150)]
    with pytest.raises(stripe.CardError):
        _complete(client, cs.id, payment_method="pm_card_chargeDeclinedExpiredCard")
    assert client.v1.checkout.sessions.retrieve(cs.id).status == "open"
    done = _complete(client, cs.id)
    assert (done.status, done.payment_status) == ("complete", "paid")
    got = client.v1.checkout.sessions.retrieve(cs.id, {"expand": ["payment_intent", "line_items"]})
    assert got.payment_intent.status == "succeeded" and got.payment_intent.amount_received == 2250
    assert got.customer_details.email == "buyer@x.io" and len(got.line_items.data) == 2
    assert [s.id for s in client.v1.checkout.sessions.list({"payment_intent": got.payment_intent.id}).data] == [cs.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(cs.id)
    completed = client.v1.events.list({"type": "checkout.session.completed"}).data
    assert [e.data.object.id for e in completed] == [cs.id]

    other = client.v1.checkout.sessions.create({"mode": "payment", "line_items": [{"price": mug.id}]})
    assert client.v1.checkout.sessions.expire(other.id).status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.create({"mode": "payment"})


def test_checkout_subscription_and_setup_sessions(client):
    plan = client.v1.prices.create({"currency": "usd", "unit_amount": 900, "recurring": {"interval": "month"},
                                    "product_data": {"name": "Plan"}})
    cs = client.v1.checkout.sessions.create({"mode": "subscription", "line_items": [{"price": plan.id}],
                                             "customer_email": "subscriber@x.io",
                                             "subscription_data": {"metadata": {"from": "checkout"}},
                                             "success_url": "https://example.com/ok"})
    done = _complete(client, cs.id)
    assert done.status == "complete" and done.customer.startswith("cus_")
    sub = client.v1.subscriptions.retrieve(done.subscription, {"expand": ["latest_invoice", "customer"]})
    assert sub.status == "active" and sub.metadata["from"] == "checkout"
    assert sub.latest_invoice.amount_paid == 900 and sub.customer.email == "subscriber@x.io"
    assert sub.default_payment_method.startswith("pm_")

    cus = client.v1.customers.create({"email": "setup@x.io"})
    setup = client.v1.checkout.sessions.create({"mode": "setup", "currency": "usd", "customer": cus.id,
                                                "success_url": "https://example.com/ok"})
    done = _complete(client, setup.id, payment_method="pm_card_mastercard")
    assert done.payment_status == "no_payment_required"
    si = client.v1.setup_intents.retrieve(done.setup_intent, {"expand": ["payment_method"]})
    assert si.status == "succeeded" and si.payment_method.card.brand == "mastercard"
    assert si.payment_method.customer == cus.id


def _advance(client, clock_id, to):
    clock = client.v1.test_helpers.test_clocks.advance(clock_id, {"frozen_time": to})
    while clock.status != "ready":
        clock = client.v1.test_helpers.test_clocks.retrieve(clock_id)
    return clock


def test_test_clock_month_renewal_is_paid_with_events(client):
    start = 1767225600  # 2026-01-01T00:00:00Z
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": start, "name": "renewal"})
    assert clock.id.startswith("clock_") and clock.status == "ready" and clock.frozen_time == start
    price, cus = _billing_customer(client, test_clock=clock.id)
    assert cus.test_clock == clock.id and cus.created == start
    assert client.v1.customers.list().data == []
    assert [c.id for c in client.v1.customers.list({"test_clock": clock.id}).data] == [cus.id]
    sub = client.v1.subscriptions.create({"customer": cus.id, "items": [{"price": price.id}]})
    assert sub.start_date == start and sub["items"].data[0].current_period_end == 1769904000  # Feb 1
    advancing = client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": 1769904000 + 3600})
    assert advancing.status == "advancing"
    clock = _advance(client, clock.id, 1769904000 + 7200)
    assert clock.frozen_time == 1769904000 + 7200
    invoices = client.v1.invoices.list({"subscription": sub.id}).data
    assert [i.billing_reason for i in invoices] == ["subscription_cycle", "subscription_create"]
    renewal = invoices[0]
    assert renewal.status == "paid" and renewal.amount_paid == 1000 and renewal.created == 1769904000
    # The invoice's period is the one that ended; its line bills the next.
    assert (renewal.period_start, renewal.period_end) == (start, 1769904000)
    assert renewal.lines.data[0].period.start == 1769904000 and renewal.lines.data[0].period.end == 1772323200
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.latest_invoice == renewal.id and sub["items"].data[0].current_period_start == 1769904000
    paid = client.v1.events.list({"type": "invoice.paid"}).data
    assert [e.data.object.id for e in paid][:1] == [renewal.id]
    assert paid[0].request.id is None and paid[0].created == 1769904000
    updated = client.v1.events.list({"type": "customer.subscription.updated"}).data[0]
    assert "items" in updated.data.previous_attributes
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": start})
    with pytest.raises(stripe.InvalidRequestError) as err:  # more than two monthly intervals
        client.v1.test_helpers.test_clocks.advance(clock.id, {"frozen_time": start + 365 * 86400})
    assert err.value.param == "frozen_time"
    assert [c.id for c in client.v1.test_helpers.test_clocks.list().data] == [clock.id]
    assert client.v1.test_helpers.test_clocks.delete(clock.id).deleted is True
    assert client.v1.customers.retrieve(cus.id).deleted is True


def test_test_clock_trial_end_notice_and_cancel_at_period_end(client):
    start = 1767225600
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": start})
    price, cus = _billing_customer(client, test_clock=clock.id)
    sub = client.v1.subscriptions.create({"customer": cus.id, "items": [{"price": price.id}],
                                          "trial_period_days": 10})
    _advance(client, clock.id, start + 8 * 86400)
    notices = client.v1.events.list({"type": "customer.subscription.trial_will_end"}).data
    assert len(notices) == 1 and notices[0].created == start + 7 * 86400
    assert client.v1.subscriptions.retrieve(sub.id).status == "trialing"
    _advance(client, clock.id, start + 11 * 86400)
    sub = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert sub.status == "active" and sub.latest_invoice.amount_paid == 1000
    sub = client.v1.subscriptions.update(sub.id, {"cancel_at_period_end": True})
    period_end = sub["items"].data[0].current_period_end
    _advance(client, clock.id, period_end + 60)
    sub = client.v1.subscriptions.retrieve(sub.id)
    assert sub.status == "canceled" and sub.ended_at == period_end
    assert len(client.v1.invoices.list({"subscription": sub.id}).data) == 2
    assert client.v1.events.list({"type": "customer.subscription.deleted"}).data[0].data.object.id == sub.id


def test_failed_renewal_makes_past_due(client):
    start = 1767225600
    clock = client.v1.test_helpers.test_clocks.create({"frozen_time": start})
    price, cus = _billing_customer(client, test_clock=clock.id)
    sub = client.v1.subscriptions.create({"customer": cus.id, "items": [{"price": price.id}]})
    bad = client.v1.payment_methods.attach("pm_card_visa_chargeDeclined", {"customer": cus.id})
    client.v1.subscriptions.update(sub.id, {"default_payment_method": bad.id})
    _advance(client, clock.id, start + 32 * 86400)
    sub = client.v1.subscriptions.retrieve(sub.id, {"expand": ["latest_invoice"]})
    assert sub.status == "past_due" and sub.latest_invoice.status == "open"
    assert client.v1.events.list({"type": "invoice.payment_failed"}).data[0].data.object.id == sub.latest_invoice.id
    client.v1.invoices.pay(sub.latest_invoice.id, {"payment_method": "pm_card_visa"})
    assert client.v1.subscriptions.retrieve(sub.id).status == "active"


def test_twin_clock_drives_renewals_of_clockless_subscriptions(client, wt):
    price, cus = _billing_customer(client)
    sub = client.v1.subscriptions.create({"customer": cus.id, "items": [{"price": price.id}]})
    wt.control("POST", "clock/advance", {"by": "32d"})
    try:
        renewed = client.v1.subscriptions.retrieve(sub.id)
    finally:
        wt.control("POST", "clock/advance", {"to": int(__import__("time").time() * 1000)})
    assert renewed.latest_invoice != sub.latest_invoice
    assert renewed["items"].data[0].current_period_start == sub["items"].data[0].current_period_end
    assert client.v1.invoices.retrieve(renewed.latest_invoice).status == "paid"


def test_invoice_and_subscription_webhooks_verify(client, wt, hooks):
    we = client.v1.webhook_endpoints.create({"url": hooks.url,
                                             "enabled_events": ["invoice.paid", "customer.subscription.created"]})
    price, cus = _billing_customer(client)
    sub = client.v1.subscriptions.create({"customer": cus.id, "items": [{"price": price.id}]})
    _flush(wt)
    events = [stripe.Webhook.construct_event(body, headers["stripe-signature"], we.secret)
              for headers, body in hooks.received]
    assert sorted(e.type for e in events) == ["customer.subscription.created", "invoice.paid"]
    by_type = {e.type: e for e in events}
    assert by_type["customer.subscription.created"].data.object.id == sub.id
    assert by_type["invoice.paid"].data.object.id == sub.latest_invoice
    assert by_type["invoice.paid"].data.object.amount_paid == 1000


def test_customer_search_or_negation_and_created(client):
    a = client.v1.customers.create({"email": "ann@x.io", "name": "Ann Lee", "metadata": {"tier": "gold"}})
    b = client.v1.customers.create({"email": "bob@y.io", "name": "Bob", "metadata": {"tier": "silver"}})
    search = client.v1.customers.search
    assert {c.id for c in search({"query": "name:'Bob' OR email:'ann@x.io'"}).data} == {a.id, b.id}
    assert [c.id for c in search({"query": "-metadata['tier']:'gold'"}).data] == [b.id]
    assert [c.id for c in search({"query": "email~'x.io' AND name~'lee'"}).data] == [a.id]
    assert {c.id for c in search({"query": f"created>={a.created}"}).data} == {a.id, b.id}
    assert search({"query": f"created>{b.created + 10}"}).data == []
    for bad in ["name:'a' AND name:'b' OR name:'c'", "(name:'a')", "name>'a'", "tier:'gold'"]:
        with pytest.raises(stripe.InvalidRequestError) as err:
            search({"query": bad})
        assert err.value.http_status == 400 and err.value.param == "query"
