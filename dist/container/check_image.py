"""Drives a running wt image the way a user's test would: the Stripe SDK
through the published port, and the control plane with and without the
admin token.

    python check_image.py SHARED_URL STRIPE_URL ADMIN_TOKEN
"""

import json
import sys
import urllib.error
import urllib.request
import warnings

import stripe

warnings.simplefilter("ignore", DeprecationWarning)
shared, stripe_url, token = sys.argv[1:4]

client = stripe.StripeClient("sk_test_image", base_addresses={"api": stripe_url})
created = client.customers.create(params={"email": "image@example.com"})
assert client.customers.retrieve(created.id).email == "image@example.com"
assert [c.id for c in client.customers.list().data] == [created.id]


def control(path, with_token):
    request = urllib.request.Request(f"{shared}/_wt/{path}")
    if with_token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


status, refused = control("twins", with_token=False)
assert status == 401 and refused["error"]["code"] == "admin_token_required", refused
status, health = control("health", with_token=True)
assert status == 200 and health["summary"] == "6/6 twins healthy", health
print(f"image ok: {created.id} through {stripe_url}; {health['summary']}")
