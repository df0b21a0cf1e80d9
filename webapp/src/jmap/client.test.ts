import { describe, expect, it } from "vitest";

import { FakeJmap } from "../sync/testing/fakeJmap";
import { JmapClient, MethodError, NetworkError, RequestError, SignedOutError } from "./client";

function setup() {
  const server = new FakeJmap();
  const inbox = server.addMailbox("inbox", "Inbox");
  const client = new JmapClient({ fetch: server.fetch, csrfToken: () => "token-7" });
  return { server, inbox, client };
}

describe("JmapClient", () => {
  it("reads the session resource and the primary mail account", async () => {
    const { client } = setup();
    const session = await client.connect();
    expect(session.apiUrl).toBe("/jmap/api");
    expect(client.accountId).toBe("a1");
  });

  it("sends calls made in the same turn as one request, with the CSRF token", async () => {
    const { server, client } = setup();
    await client.connect();
    const [mailboxes, identities] = await Promise.all([
      client.call("Mailbox/get", { accountId: "a1", ids: null }),
      client.call("Identity/get", { accountId: "a1" }),
    ]);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.using).toContain("urn:ietf:params:jmap:mail");
    expect(mailboxes.name).toBe("Mailbox/get");
    expect(identities.name).toBe("Identity/get");
    expect(server.csrfSeen).toEqual(["token-7", "token-7"]);
  });

  it("chains calls with result references (RFC 8620 §3.7)", async () => {
    const { server, inbox, client } = setup();
    const email = server.addEmail({ mailboxIds: { [inbox.id]: true } });
    await client.connect();
    const batch = client.batch();
    const query = batch.call("Email/query", { accountId: "a1", filter: { inMailbox: inbox.id } });
    const get = batch.call("Email/get", { accountId: "a1", "#ids": query.ref("/ids"), properties: ["subject"] });
    await batch.send();
    const sent = server.requests[0]?.methodCalls[1]?.[1];
    expect(sent?.["#ids"]).toEqual({ resultOf: query.id, name: "Email/query", path: "/ids" });
    expect(((await get.result).args.list as { id: string }[]).map((e) => e.id)).toEqual([email.id]);
  });

  it("tracks each type's state from /get, /set and /changes", async () => {
    const { server, inbox, client } = setup();
    await client.connect();
    const seen: [string, string][] = [];
    client.onState((type, state) => seen.push([type, state]));
    await client.call("Mailbox/get", { accountId: "a1", ids: null });
    expect(client.states.get("Mailbox")).toBe(server.state("Mailbox"));
    const email = server.addEmail({ mailboxIds: { [inbox.id]: true } });
    await client.call("Email/set", { accountId: "a1", update: { [email.id]: { "keywords/$seen": true } } });
    expect(client.states.get("Email")).toBe(server.state("Email"));
    expect(seen.map(([type]) => type)).toEqual(["Mailbox", "Email"]);
  });

  it("rejects a method error with its type, and only that call", async () => {
    const { client } = setup();
    await client.connect();
    const bad = client.call("Email/set", { accountId: "a1", ifInState: "nope", update: {} });
    const good = client.call("Mailbox/get", { accountId: "a1", ids: null });
    await expect(bad).rejects.toMatchObject({ name: "MethodError", type: "stateMismatch" });
    await expect(good).resolves.toMatchObject({ name: "Mailbox/get" });
    await expect(client.call("Nothing/here", { accountId: "a1" })).rejects.toBeInstanceOf(MethodError);
  });

  it("keeps to the session's maxConcurrentRequests instead of being refused (RFC 8620 §2)", async () => {
    // Like the server: a request beyond the limit is refused with a "limit" error. The
    // list, the open message and the sync asking at once lost the list's refresh this way.
    const server = new FakeJmap();
    server.addMailbox("inbox", "Inbox");
    (server.session.capabilities["urn:ietf:params:jmap:core"] as Record<string, unknown>).maxConcurrentRequests = 2;
    let inFlight = 0;
    let most = 0;
    const limited: typeof fetch = async (input, init) => {
      if (init?.method !== "POST") return server.fetch(input, init);
      if (inFlight >= 2) {
        return new Response(JSON.stringify({ type: "urn:ietf:params:jmap:error:limit", limit: "maxConcurrentRequests" }), { status: 400 });
      }
      inFlight += 1;
      most = Math.max(most, inFlight);
      try {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return await server.fetch(input, init);
      } finally {
        inFlight -= 1;
      }
    };
    const client = new JmapClient({ fetch: limited });
    await client.connect();
    const sends = Array.from({ length: 6 }, () => {
      const batch = client.batch();
      const get = batch.call("Mailbox/get", { accountId: "a1", ids: null });
      return batch.send().then(() => get.result);
    });
    const answers = await Promise.all(sends);
    expect(answers.map((a) => a.name)).toEqual(Array(6).fill("Mailbox/get"));
    expect(most).toBe(2);
  });

  it("tells a network failure, a signed-out session and a refused request apart", async () => {
    const { server, client } = setup();
    await client.connect();
    server.online = false;
    await expect(client.call("Mailbox/get", { accountId: "a1" })).rejects.toBeInstanceOf(NetworkError);
    const answer = (status: number, body: string) =>
      new JmapClient({ fetch: async () => new Response(body, { status }) }).connect();
    await expect(answer(401, "")).rejects.toBeInstanceOf(SignedOutError);
    await expect(answer(503, "busy")).rejects.toBeInstanceOf(NetworkError);
    const refused = answer(400, JSON.stringify({ type: "urn:ietf:params:jmap:error:notRequest", detail: "bad" }));
    await expect(refused).rejects.toMatchObject({ type: "urn:ietf:params:jmap:error:notRequest" });
    await expect(answer(400, "<html>")).rejects.toBeInstanceOf(RequestError);
  });

  it("reports pushed state changes that differ from what it has seen (RFC 8620 §7.3)", async () => {
    const sources: FakeEventSource[] = [];
    class FakeEventSource extends EventTarget {
      closed = false;
      constructor(readonly url: string) {
        super();
        sources.push(this);
      }
      close() {
        this.closed = true;
      }
    }
    const server = new FakeJmap();
    const withServer = new JmapClient({ fetch: server.fetch, EventSource: FakeEventSource as unknown as typeof EventSource });
    await withServer.connect();
    withServer.states.set("Mailbox", "5");
    const changes: string[][] = [];
    const stop = withServer.push({ onChange: (types) => changes.push(types) });
    expect(sources[0]?.url).toBe("/jmap/eventsource?types=*&closeafter=no&ping=60");
    const send = (changed: Record<string, string>) =>
      sources[0]?.dispatchEvent(
        new MessageEvent("state", { data: JSON.stringify({ "@type": "StateChange", changed: { a1: changed } }) }),
      );
    send({ Mailbox: "5", Email: "9" });
    send({ Mailbox: "5" });
    expect(changes).toEqual([["Email"]]);
    stop();
    expect(sources[0]?.closed).toBe(true);
  });

  it("gives up on an API request that never answers: a network failure, not a hang", async () => {
    const { server } = setup();
    let hang = false;
    const fetcher: typeof fetch = (input, init) => {
      if (!hang) return server.fetch(input, init);
      // A server that accepted the connection and never answers; only the signal ends it.
      return new Promise((_resolve, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      });
    };
    const client = new JmapClient({ fetch: fetcher, timeoutMs: 50 });
    await client.connect();
    hang = true;
    await expect(client.call("Mailbox/get", { accountId: "a1", ids: null })).rejects.toBeInstanceOf(NetworkError);
  });
});
