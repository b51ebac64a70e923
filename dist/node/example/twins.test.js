// What a user's suite looks like: the vendors' own npm SDKs against twins
// from `npm install @wondertwin/wt`, a world per test.
const test = require('node:test');
const assert = require('node:assert');
const Stripe = require('stripe');
const { startTwins, WtError } = require('@wondertwin/wt');

test('a customer is remembered, in this world only', async () => {
  const twins = await startTwins(['stripe']);
  try {
    const stripe = new Stripe('sk_test_node', twins.stripeOptions());
    const created = await stripe.customers.create({ email: 'ada@example.com' });
    assert.strictEqual((await stripe.customers.retrieve(created.id)).email, 'ada@example.com');
    const posts = await twins.requests('stripe', { method: 'POST' });
    assert.deepStrictEqual(posts.map((r) => r.path), ['/v1/customers']);
    const other = await startTwins(['stripe']);
    const elsewhere = new Stripe('sk_test_node', other.stripeOptions());
    assert.strictEqual((await elsewhere.customers.list()).data.length, 0);
    await other.close();
  } finally {
    await twins.close();
  }
});

test('a declined card and an injected fault', async () => {
  const twins = await startTwins(['stripe']);
  try {
    const stripe = new Stripe('sk_test_node', twins.stripeOptions());
    await assert.rejects(
      stripe.paymentIntents.create({ amount: 500, currency: 'usd', payment_method: 'pm_card_visa_chargeDeclined', confirm: true }),
      (err) => err.type === 'StripeCardError' && err.code === 'card_declined',
    );
    // stripe-node retries a 503: one injected failure is retried and the
    // customer still made, as against the real API.
    const outage = { type: 'api_error', message: 'Injected outage.' };
    await twins.fault('stripe', { status: 503, path: '/v1/customers', count: 1, body: { error: outage } });
    await stripe.customers.create({ email: 'b@example.com' });
    const tries = await twins.requests('stripe', { path: '/v1/customers' });
    assert.deepStrictEqual(tries.map((r) => r.status), [503, 200]);
    // Without retries the failure reaches the caller.
    await twins.fault('stripe', { status: 503, path: '/v1/customers', count: 1, body: { error: outage } });
    const once = new Stripe('sk_test_node', { ...twins.stripeOptions(), maxNetworkRetries: 0 });
    await assert.rejects(once.customers.create({ email: 'c@example.com' }), (err) => err.statusCode === 503 && err.message === 'Injected outage.');
  } finally {
    await twins.close();
  }
});

test('resend schedules mail on twin time', async () => {
  const twins = await startTwins(['resend']);
  try {
    // resend-node reads its base URL when it is first required.
    process.env.RESEND_BASE_URL = twins.url('resend');
    const { Resend } = require('resend');
    const resend = new Resend('re_node');
    const at = new Date(Date.now() + 2 * 86400e3).toISOString();
    const { data, error } = await resend.emails.send({
      from: 'a@example.com', to: 'delivered@resend.dev', subject: 'hi', html: '<p>hi</p>', scheduledAt: at,
    });
    assert.ifError(error);
    assert.strictEqual((await resend.emails.get(data.id)).data.last_event, 'scheduled');
    await twins.advance('3d');
    assert.strictEqual((await resend.emails.get(data.id)).data.last_event, 'delivered');
  } finally {
    await twins.close();
  }
});

test('an unknown twin is a clear error', async () => {
  const twins = await startTwins(['stripe']);
  assert.throws(() => twins.url('nope'), WtError);
  await twins.close();
});
