/**
 * A small JMAP client: RFC 8620 §2 (session resource), §3 (requests, batching, result
 * references §3.7, errors §3.6), §5 (state strings), §7.3 (push over EventSource).
 *
 * Calls made in the same turn of the event loop share one HTTP request (RFC 8620 §3.3: a
 * request holds several method calls, processed in order). Every request carries the
 * session API's CSRF token (X-CSRF-Token): the webmail authenticates with a cookie.
 */

import {
  CONTACTS,
  CORE,
  MAIL,
  PRINCIPALS,
  SUBMISSION,
  type Id,
  type Invocation,
  type JmapRequest,
  type JmapResponse,
  type ResultReference,
  type Session,
  type StateChange,
} from "./types";

/** RFC 8620 §3.6.2: a method-level error ("error" response). */
export class MethodError extends Error {
  constructor(
    readonly type: string,
    readonly method: string,
    readonly details: Record<string, unknown>,
  ) {
    super(`${method}: ${type}${typeof details.description === "string" ? `: ${details.description}` : ""}`);
    this.name = "MethodError";
  }
}

/** RFC 8620 §3.6.1: a request-level error (a problem details object) or an HTTP failure. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    detail: string,
  ) {
    super(`${status} ${type}: ${detail}`);
    this.name = "RequestError";
  }
}

/** The network is unreachable: the caller should go offline and retry later. */
export class NetworkError extends Error {
  constructor(cause: unknown) {
    super(`network unreachable: ${String(cause)}`);
    this.name = "NetworkError";
  }
}

/** The session cookie is gone or expired (HTTP 401): the user must sign in again. */
export class SignedOutError extends Error {
  constructor() {
    super("signed out");
    this.name = "SignedOutError";
  }
}

export interface MethodResult {
  name: string;
  args: Record<string, unknown>;
  /** Further responses to the same call (RFC 8620 §3.4: e.g. an implicit Email/set). */
  extra: Invocation[];
}

/** A handle on one call in a batch: its id, and references to its result. */
export class Call {
  constructor(
    readonly id: string,
    readonly name: string,
    readonly result: Promise<MethodResult>,
  ) {}

  /** RFC 8620 §3.7: a result reference to ``path`` in this call's response. */
  ref(path: string): ResultReference {
    return { resultOf: this.id, name: this.name, path };
  }
}

interface Pending {
  invocation: Invocation;
  resolve: (result: MethodResult) => void;
  reject: (error: unknown) => void;
}

/** How long an API request may take before it counts as a network failure. */
export const API_TIMEOUT_MS = 60_000;

/** Several method calls sent as one request. */
export class Batch {
  private readonly pending: Pending[] = [];
  private sent = false;

  constructor(
    private readonly client: JmapClient,
    private readonly prefix: string,
  ) {}

  call(name: string, args: Record<string, unknown>): Call {
    if (this.sent) throw new Error("batch already sent");
    const id = `${this.prefix}${this.pending.length}`;
    let resolve!: (result: MethodResult) => void;
    let reject!: (error: unknown) => void;
    const result = new Promise<MethodResult>((ok, fail) => {
      resolve = ok;
      reject = fail;
    });
    // A call nobody awaits must not be an unhandled rejection: send() reports it.
    result.catch(() => undefined);
    this.pending.push({ invocation: [name, args, id], resolve, reject });
    return new Call(id, name, result);
  }

  get size(): number {
    return this.pending.length;
  }

  /** Send every call; resolves once all responses are in, rejects on a request error. */
  async send(): Promise<MethodResult[]> {
    this.sent = true;
    if (this.pending.length === 0) return [];
    let response: JmapResponse;
    try {
      response = await this.client.post(this.pending.map((p) => p.invocation));
    } catch (error) {
      for (const p of this.pending) p.reject(error);
      throw error;
    }
    const byId = new Map<string, Invocation[]>();
    for (const invocation of response.methodResponses) {
      const list = byId.get(invocation[2]) ?? [];
      list.push(invocation);
      byId.set(invocation[2], list);
    }
    const results: MethodResult[] = [];
    for (const p of this.pending) {
      const [name, , id] = p.invocation;
      const answers = byId.get(id) ?? [];
      const first = answers[0];
      if (first === undefined) {
        const error = new MethodError("serverFail", name, { description: "no response" });
        p.reject(error);
        throw error;
      }
      if (first[0] === "error") {
        p.reject(new MethodError(String(first[1].type ?? "serverFail"), name, first[1]));
        continue;
      }
      this.client.noteStates(first[0], first[1]);
      for (const more of answers.slice(1)) this.client.noteStates(more[0], more[1]);
      const result = { name: first[0], args: first[1], extra: answers.slice(1) };
      results.push(result);
      p.resolve(result);
    }
    return results;
  }
}

export interface ClientOptions {
  sessionUrl?: string;
  fetch?: typeof fetch;
  /** The CSRF token from the session API (sent as X-CSRF-Token). */
  csrfToken?: () => string | null;
  EventSource?: new (url: string, init?: EventSourceInit) => EventSource;
  /** How long an API request may take (default API_TIMEOUT_MS). */
  timeoutMs?: number;
}

type StateListener = (type: string, state: string) => void;

export class JmapClient {
  session: Session | null = null;
  /** The last state string seen per data type (RFC 8620 §5.1 "state"). */
  readonly states = new Map<string, string>();
  private readonly fetcher: typeof fetch;
  private readonly sessionUrl: string;
  private readonly csrfToken: () => string | null;
  private readonly EventSourceImpl: ClientOptions["EventSource"];
  private readonly timeoutMs: number;
  private autoBatch: Batch | null = null;
  private batches = 0;
  private readonly stateListeners = new Set<StateListener>();
  /** API requests sent and not yet answered, and the ones waiting for a free slot. */
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(options: ClientOptions = {}) {
    this.sessionUrl = options.sessionUrl ?? "/.well-known/jmap";
    this.fetcher = options.fetch ?? ((input, init) => fetch(input, init));
    this.csrfToken = options.csrfToken ?? (() => null);
    this.EventSourceImpl = options.EventSource ?? globalThis.EventSource;
    this.timeoutMs = options.timeoutMs ?? API_TIMEOUT_MS;
  }

  /** RFC 8620 §2: fetch the session resource. */
  async connect(): Promise<Session> {
    const response = await this.send(this.sessionUrl, { method: "GET" });
    this.session = (await response.json()) as Session;
    return this.session;
  }

  get accountId(): Id {
    const id = this.session?.primaryAccounts[MAIL];
    if (id === undefined) throw new Error("no JMAP mail account in the session");
    return id;
  }

  /** A new explicit batch: calls with result references between them. */
  batch(): Batch {
    return new Batch(this, `b${this.batches++}.`);
  }

  /** One call; calls made in the same turn go in one request. */
  call(name: string, args: Record<string, unknown>): Promise<MethodResult> {
    if (this.autoBatch === null) {
      const batch = this.batch();
      this.autoBatch = batch;
      queueMicrotask(() => {
        this.autoBatch = null;
        batch.send().catch(() => undefined);
      });
    }
    return this.autoBatch.call(name, args).result;
  }

  onState(listener: StateListener): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  /** Record the state a response reports (``state`` of /get, ``newState`` of /set, /changes). */
  noteStates(method: string, args: Record<string, unknown>): void {
    const type = method.split("/")[0] ?? method;
    const verb = method.split("/")[1];
    let state: unknown;
    if (verb === "get") state = args.state;
    else if (verb === "set" || verb === "changes") state = args.newState;
    if (typeof state !== "string" || this.states.get(type) === state) return;
    // /changes with more to come reports an intermediate state; it is still the state the
    // caller now holds.
    this.states.set(type, state);
    for (const listener of this.stateListeners) listener(type, state);
  }

  /** POST method calls to the API URL (RFC 8620 §3.1). */
  async post(methodCalls: Invocation[]): Promise<JmapResponse> {
    const session = this.session ?? (await this.connect());
    // Contacts and principals only when the server offers them: an unknown capability in
    // "using" fails the whole request (RFC 8620 §3.6.1 unknownCapability).
    const optional = [CONTACTS, PRINCIPALS].filter((capability) => capability in session.capabilities);
    const request: JmapRequest = { using: [CORE, MAIL, SUBMISSION, ...optional], methodCalls };
    // RFC 8620 §2 maxConcurrentRequests: the server refuses one more (a "limit" request
    // error), and the list, the open message, the sync and the contacts all ask at once.
    // A refused list refresh would leave the rows as they were before a command.
    await this.slot(session);
    try {
      // A request that never answers must not hold the sync engine (syncs run one at a
      // time): after a minute it counts as a network failure, and the queue retries.
      const response = await this.send(session.apiUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(request),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      try {
        return (await response.json()) as JmapResponse;
      } catch (error) {
        throw new NetworkError(error);
      }
    } finally {
      this.inFlight -= 1;
      this.waiting.shift()?.();
    }
  }

  /** Wait until fewer API requests than the session allows are in flight, and take one. */
  private async slot(session: Session): Promise<void> {
    const core = session.capabilities[CORE] as { maxConcurrentRequests?: unknown } | undefined;
    const limit = typeof core?.maxConcurrentRequests === "number" && core.maxConcurrentRequests >= 1 ? core.maxConcurrentRequests : 4;
    while (this.inFlight >= limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight += 1;
  }

  /** RFC 8620 §6.1: upload a blob; returns its blobId. */
  async upload(data: Blob, type: string): Promise<{ blobId: Id; size: number; type: string }> {
    const session = this.session ?? (await this.connect());
    const url = session.uploadUrl.replace("{accountId}", encodeURIComponent(this.accountId));
    const response = await this.send(url, {
      method: "POST",
      headers: { "Content-Type": type || "application/octet-stream" },
      body: data,
    });
    return (await response.json()) as { blobId: Id; size: number; type: string };
  }

  /** RFC 8620 §6.2: the download URL of a blob. */
  downloadUrl(blobId: Id, name: string, type: string): string {
    if (this.session === null) throw new Error("not connected");
    return this.session.downloadUrl
      .replace("{accountId}", encodeURIComponent(this.accountId))
      .replace("{blobId}", encodeURIComponent(blobId))
      .replace("{name}", encodeURIComponent(name))
      .replace("{type}", encodeURIComponent(type));
  }

  /** RFC 8620 §6.2: download a blob. */
  async download(blobId: Id, name: string, type: string): Promise<Blob> {
    const response = await this.send(this.downloadUrl(blobId, name, type), { method: "GET" });
    return response.blob();
  }

  /**
   * RFC 8620 §7.3: listen for StateChange events. ``onChange`` gets the types whose state
   * differs from what this client last saw; ``onOpen``/``onError`` track the connection.
   */
  push(handlers: {
    onChange: (types: string[]) => void;
    onOpen?: () => void;
    onError?: () => void;
  }): () => void {
    if (this.session === null || this.EventSourceImpl === undefined) return () => undefined;
    const url = this.session.eventSourceUrl
      .replace("{types}", "*")
      .replace("{closeafter}", "no")
      .replace("{ping}", "60");
    const source = new this.EventSourceImpl(url, { withCredentials: true });
    source.addEventListener("state", (event) => {
      const change = JSON.parse((event as MessageEvent<string>).data) as StateChange;
      const states = change.changed[this.accountId] ?? {};
      const changed = Object.entries(states)
        .filter(([type, state]) => this.states.get(type) !== state)
        .map(([type]) => type);
      if (changed.length > 0) handlers.onChange(changed);
    });
    if (handlers.onOpen) source.addEventListener("open", handlers.onOpen);
    if (handlers.onError) source.addEventListener("error", handlers.onError);
    return () => source.close();
  }

  private async send(url: string, init: RequestInit): Promise<Response> {
    const headers = new Headers(init.headers);
    const token = this.csrfToken();
    if (token !== null) headers.set("X-CSRF-Token", token);
    headers.set("Accept", "application/json");
    let response: Response;
    try {
      response = await this.fetcher(url, { ...init, headers, credentials: "same-origin" });
    } catch (error) {
      throw new NetworkError(error);
    }
    if (response.status === 401) throw new SignedOutError();
    if (!response.ok) {
      let type = "about:blank";
      let detail = response.statusText;
      try {
        const problem = (await response.json()) as { type?: string; detail?: string };
        type = problem.type ?? type;
        detail = problem.detail ?? detail;
      } catch {
        // Not a problem-details body (a proxy's error page): keep the status line.
      }
      // 5xx and gateway errors mean "try again later", like a network failure.
      if (response.status >= 500) throw new NetworkError(`${response.status} ${detail}`);
      throw new RequestError(response.status, type, detail);
    }
    return response;
  }
}
