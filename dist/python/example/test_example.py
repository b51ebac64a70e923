"""What a user's suite looks like: the vendors' own SDKs against twins from
`pip install wondertwin`, a world per test from the pytest plugin."""

import datetime

import pytest
import resend
import stripe

import wondertwin


@pytest.mark.twins("stripe")
def test_a_customer_is_remembered(twins):
    client = stripe.StripeClient("sk_test_example", base_addresses={"api": twins.url("stripe")})
    created = client.customers.create(params={"email": "ada@example.com"})
    assert client.customers.retrieve(created.id).email == "ada@example.com"
    assert [r["path"] for r in twins.requests("stripe", method="POST")] == ["/v1/customers"]


@pytest.mark.twins("stripe")
def test_each_test_starts_empty(twins):
    client = stripe.StripeClient("sk_test_example", base_addresses={"api": twins.url("stripe")})
    assert client.customers.list().data == []


@pytest.mark.twins("stripe")
def test_declines_and_faults(twins):
    client = stripe.StripeClient("sk_test_example", base_addresses={"api": twins.url("stripe")})
    with pytest.raises(stripe.CardError):
        client.payment_intents.create(
            params={"amount": 500, "currency": "usd", "payment_method": "pm_card_visa_chargeDeclined", "confirm": True}
        )
    twins.fault("stripe", status=503, path="/v1/customers", count=1)
    with pytest.raises(stripe.APIError):
        client.customers.create(params={"email": "b@example.com"})


@pytest.mark.twins("resend")
def test_scheduled_mail_is_sent_when_time_moves(twins):
    resend.api_key = "re_example"
    resend.api_url = twins.url("resend")
    at = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).isoformat()
    sent = resend.Emails.send(
        {"from": "a@example.com", "to": "delivered@resend.dev", "subject": "hi", "html": "<p>hi</p>", "scheduled_at": at}
    )
    assert resend.Emails.get(sent["id"])["last_event"] == "scheduled"
    twins.advance("3d")
    assert resend.Emails.get(sent["id"])["last_event"] == "delivered"


def test_twins_as_a_context_manager():
    with wondertwin.Twins(["stripe", "resend"]) as world:
        assert world.url("stripe").startswith("http://127.0.0.1:")
        world.reset()
        with pytest.raises(wondertwin.WtError):
            world.url("nope")
