import "fake-indexeddb/auto";

import { describe, expect, it } from "vitest";

import { JmapClient } from "../jmap/client";
import { MemoryMailCache } from "../sync/cache";
import { SyncEngine } from "../sync/engine";
import { FakeJmap } from "../sync/testing/fakeJmap";
import { snippetRuns } from "./snippets";
import { ListSource, PAGE } from "./listSource";

function bigMailbox(count: number) {
  const server = new FakeJmap();
  const inbox = server.addMailbox("inbox", "Inbox").id;
  const base = Date.parse("2026-11-22T00:00:00Z");
  for (let i = 0; i < count; i++) {
    server.addEmail({
      mailboxIds: { [inbox]: true },
      receivedAt: new Date(base - i * 60_000).toISOString(),
      subject: i % 50 === 0 ? `Budget review ${i}` : `Message ${i}`,
    });
  }
  return { server, inbox };
}

describe("ListSource", () => {
  it("loads only the windows it is asked for, one request each", async () => {
    const { server, inbox } = bigMailbox(450);
    const client = new JmapClient({ fetch: server.fetch });
    await client.connect();
    const source = new ListSource(inbox, client, new MemoryMailCache(), true);

    await source.ensure(0, 30);
    expect(source.total).toBe(450);
    expect(source.row(0)?.subject).toBe("Budget review 0");
    expect(source.row(PAGE)).toBeUndefined();
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.methodCalls.map((c) => c[0])).toEqual(["Email/query", "Email/get"]);

    await source.ensure(420, 450);
    expect(source.row(449)?.subject).toBe("Message 449");
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]?.methodCalls[0]?.[1]).toMatchObject({ position: 400, limit: PAGE });
    await source.ensure(0, 30);
    expect(server.requests).toHaveLength(2);
  });

  it("searches every mailbox with highlighted snippets online", async () => {
    const { server } = bigMailbox(120);
    const client = new JmapClient({ fetch: server.fetch });
    await client.connect();
    const source = new ListSource(null, client, new MemoryMailCache(), true, "budget");
    await source.ensure(0, 10);
    expect(source.total).toBe(3);
    const first = source.row(0);
    const marked = snippetRuns(source.snippet(first?.id ?? "")?.subject ?? "").filter((r) => r.marked);
    expect(marked.map((r) => r.text)).toEqual(["Budget"]);
  });

  it("reads the local copy offline, searches it with local snippets", async () => {
    const { server, inbox } = bigMailbox(60);
    const cache = new MemoryMailCache();
    const client = new JmapClient({ fetch: server.fetch });
    const engine = new SyncEngine({ client, cache, now: () => Date.parse("2026-11-22T12:00:00Z") });
    await engine.synchronise();
    server.online = false;

    const list = new ListSource(inbox, client, cache, false);
    await list.ensure(0, 10);
    expect(list.total).toBe(60);
    expect(list.row(1)?.subject).toBe("Message 1");

    // An "online" list whose connection dropped unnoticed falls back to the copy.
    const unnoticed = new ListSource(inbox, client, cache, true);
    await unnoticed.ensure(0, 10);
    expect(unnoticed.total).toBe(60);

    const search = new ListSource(null, client, cache, false, "budget");
    await search.ensure(0, 10);
    expect(search.total).toBe(2);
    expect(snippetRuns(search.snippet(search.row(0)?.id ?? "")?.subject ?? "")[0]).toEqual({ text: "Budget", marked: true });
  });

  it("starts from the previous rows of the same list until its own arrive, then replaces them", async () => {
    const { server, inbox } = bigMailbox(5);
    const client = new JmapClient({ fetch: server.fetch });
    await client.connect();
    const before = new ListSource(inbox, client, new MemoryMailCache(), true);
    await before.ensure(0, 5);
    const gone = before.row(0);
    server.destroy(gone?.id ?? "");

    const after = new ListSource(inbox, client, new MemoryMailCache(), true, "", before);
    // Shown at once (keys and the selection keep working), not yet asked for.
    expect(after.total).toBe(5);
    expect(after.row(0)?.id).toBe(gone?.id);
    await after.ensure(0, 5);
    expect(after.total).toBe(4);
    expect(after.row(0)?.subject).toBe("Message 1");
    expect(after.row(4)).toBeUndefined();
  });

  it("loads a list that was empty before: the carried total does not stop the loading", async () => {
    const server = new FakeJmap();
    const inbox = server.addMailbox("inbox", "Inbox").id;
    const client = new JmapClient({ fetch: server.fetch });
    await client.connect();
    const before = new ListSource(inbox, client, new MemoryMailCache(), true);
    await before.ensure(0, 1);
    expect(before.total).toBe(0);
    server.addEmail({ mailboxIds: { [inbox]: true }, receivedAt: "2026-11-22T10:00:00Z", subject: "Arrived" });
    const after = new ListSource(inbox, client, new MemoryMailCache(), true, "", before);
    await after.ensure(0, 1);
    expect(after.total).toBe(1);
    expect(after.row(0)?.subject).toBe("Arrived");
  });
});
