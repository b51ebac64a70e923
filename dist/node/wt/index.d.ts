/** A fault to inject: an answer, a delay or a dropped connection. */
export interface FaultSpec {
  method?: string;
  /** `*` matches any run of characters, `/` included. */
  path?: string;
  status?: number;
  body?: unknown;
  /** `"250ms"`, `"2s"`. */
  latency?: string;
  drop?: boolean;
  rate?: number;
  count?: number;
}

export interface JournalEntry {
  method: string;
  path: string;
  status: number;
  [field: string]: unknown;
}

export class WtError extends Error {}

export class Host {
  readonly url: string;
  control(method: string, path: string, body?: unknown): Promise<any>;
}

/** A world of twins of its own (a tenant on a wt-host). */
export class Twins {
  readonly id: string;
  readonly host: Host;
  /** The base URL to give the twin's SDK (a port of its own). */
  url(twin: string): string;
  /** Options for `new Stripe(key, …)`, which takes a host and port. */
  stripeOptions(twin?: string): { host: string; port: number; protocol: 'http' };
  reset(twin?: string): Promise<void>;
  /** Moves this world's time forward (`"30d"`); resolves to the new time in ms. */
  advance(by: string): Promise<number>;
  state(twin: string): Promise<{ entries: Array<{ key: string; text?: string; base64?: string }> }>;
  loadState(twin: string, document: unknown): Promise<void>;
  requests(twin: string, filter?: { method?: string; path?: string; limit?: number }): Promise<JournalEntry[]>;
  fault(twin: string, spec: FaultSpec): Promise<unknown>;
  /** Removes the tenant. */
  close(): Promise<void>;
}

/** A world of its own with `twins` (all when omitted), on `WT_URL`'s host or one started here. */
export function startTwins(twins?: string[], options?: { ttl?: string }): Promise<Twins>;
