'use strict';
// @wondertwin/wt: behavioral API twins for Node tests.
//
//   const { startTwins } = require('@wondertwin/wt');
//   const twins = await startTwins(['stripe']);
//   const stripe = new Stripe('sk_test_x', twins.stripeOptions());  // or twins.url('stripe')
//   await twins.advance('30d');
//   await twins.close();
//
// Each startTwins() is a tenant on a wt-host: its twins have their own
// state, clock, faults and journal, so tests (node --test runs files in
// parallel) never see each other's. The host is the one at WT_URL (with
// WT_ADMIN_TOKEN), or one this process starts from the platform package's
// binary (or WT_HOST_BIN, or PATH) and stops when it exits.

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

class WtError extends Error {}

function binary() {
  if (process.env.WT_HOST_BIN) return process.env.WT_HOST_BIN;
  const pkg = `@wondertwin/wt-${process.platform}-${process.arch}`;
  try {
    return require.resolve(`${pkg}/bin/wt-host`);
  } catch {
    for (const dir of (process.env.PATH || '').split(path.delimiter)) {
      const candidate = path.join(dir, 'wt-host');
      if (dir && fs.existsSync(candidate)) return candidate;
    }
    throw new WtError(`no wt-host binary: install ${pkg}, set WT_HOST_BIN, or put wt-host on PATH`);
  }
}

function bundledTwins() {
  const dir = path.join(__dirname, 'twins');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => f.endsWith('.wasm')).sort().map((f) => path.join(dir, f));
}

class Host {
  constructor(url, adminToken, child) {
    this.url = url.replace(/\/$/, '');
    this.adminToken = adminToken;
    this.child = child;
  }

  // One control-plane call (/_wt/{path}); resolves to the JSON answer.
  async control(method, p, body) {
    const headers = { 'content-type': 'application/json' };
    if (this.adminToken) headers.authorization = `Bearer ${this.adminToken}`;
    const response = await fetch(`${this.url}/_wt/${p}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    const value = text ? JSON.parse(text) : null;
    if (!response.ok) {
      const message = value && value.error ? value.error.message : text;
      throw new WtError(`${method} /_wt/${p}: ${response.status}: ${message}`);
    }
    return value;
  }

  static start() {
    const sources = bundledTwins();
    if (sources.length === 0) throw new WtError('no twins bundled in @wondertwin/wt');
    const args = ['run', ...sources, '--listen', '127.0.0.1:0'];
    for (const source of sources) args.push('--port', `${path.basename(source, '.wasm')}=0`);
    const child = spawn(binary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    // The host must not outlive the test process.
    process.on('exit', () => child.kill());
    return new Promise((resolve, reject) => {
      let out = '';
      let err = '';
      child.stderr.on('data', (d) => { err += d; });
      child.on('exit', (code) => reject(new WtError(`wt-host exited (${code}) before it was ready: ${err.trim()}`)));
      child.stdout.on('data', (d) => {
        out += d;
        const line = out.split('\n').find((l) => l.includes(' listening on '));
        if (line) {
          const url = line.split(/\s+/).find((w) => w.startsWith('http://'));
          child.removeAllListeners('exit');
          // Once ready, the host must not keep the test process alive.
          child.unref();
          child.stdout.unref();
          child.stderr.unref();
          resolve(new Host(url, undefined, child));
        }
      });
    });
  }
}

let shared;

// The host every startTwins() of this process uses.
function sharedHost() {
  if (!shared) {
    shared = process.env.WT_URL
      ? Promise.resolve(new Host(process.env.WT_URL, process.env.WT_ADMIN_TOKEN))
      : Host.start();
  }
  return shared;
}

class Twins {
  constructor(host, made) {
    this.host = host;
    this.id = made.id;
    this.urls = Object.fromEntries(Object.entries(made.twins).map(([name, u]) => [name, u.base_url]));
  }

  // The base URL to give the twin's SDK (a port of its own).
  url(twin) {
    const url = this.urls[twin];
    if (!url) throw new WtError(`no twin '${twin}' here (these: ${Object.keys(this.urls).join(', ')})`);
    return url;
  }

  // stripe-node takes a host and port, not a URL: `new Stripe(key, twins.stripeOptions())`.
  stripeOptions(twin = 'stripe') {
    const u = new URL(this.url(twin));
    return { host: u.hostname, port: Number(u.port), protocol: 'http' };
  }

  control(method, p, body) {
    return this.host.control(method, `tenants/${this.id}/${p}`, body);
  }

  async reset(twin) {
    await this.control('POST', twin ? `twins/${twin}/reset` : 'reset');
  }

  // Moves this world's time forward ('30d', '2h'); resolves to the new time in ms.
  async advance(by) {
    return (await this.control('POST', 'clock/advance', { by })).now_millis;
  }

  state(twin) {
    return this.control('GET', `twins/${twin}/state`);
  }

  async loadState(twin, document) {
    await this.control('PUT', `twins/${twin}/state`, document);
  }

  async requests(twin, { method, path: prefix, limit } = {}) {
    const query = new URLSearchParams();
    if (method) query.set('method', method);
    if (prefix) query.set('path', prefix);
    if (limit) query.set('limit', String(limit));
    const q = query.toString();
    return (await this.control('GET', `twins/${twin}/requests${q ? `?${q}` : ''}`)).requests;
  }

  fault(twin, spec) {
    return this.control('POST', `twins/${twin}/faults`, spec);
  }

  // Removes the tenant (its twins, state and ports).
  async close() {
    await this.host.control('DELETE', `tenants/${this.id}`).catch(() => {});
  }
}

// A world of its own with `twins` (all when omitted).
async function startTwins(twins, { ttl = '1h' } = {}) {
  const host = await sharedHost();
  const body = { ttl };
  if (twins && twins.length) body.twins = twins;
  return new Twins(host, await host.control('POST', 'tenants', body));
}

module.exports = { startTwins, Twins, Host, WtError };
