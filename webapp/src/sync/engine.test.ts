import "fake-indexeddb/auto";

import { IDBFactory } from "fake-indexeddb";
import { beforeEach, describe, expect, it, vi } from "vitest";

import { JmapClient } from "../jmap/client";
import type { Draft } from "./actions";
import { MailCache, MemoryMailCache } from "./cache";
import { type EngineEvent, OUTBOX, SyncEngine } from "./engine";
import { FakeJmap } from "./testing/fakeJmap";

const DAY = 86_400_000;
const NOW = Date.parse("2026-11-22T12:00:00Z");

function daysAgo(days: number): string {
  return new Date(NOW - days * DAY).toISOString();
}

function draft(subject: string, messageId: string): Draft {
  return {
    from: [{ name: "Alice", email: "alice@example.test" }],
    to: [{ name: null, email: "bob@example.test" }],
    cc: [],
    bcc: [],
    subject,
    textBody: `text of ${subject}`,
    htmlBody: null,
    inReplyTo: null,
    references: null,
    messageId,
    attachments: [],
  };
}

interface World {
  server: FakeJmap;
  factory: IDBFactory;
  engine: SyncEngine;
  events: EngineEvent[];
  inbox: string;
  archive: string;
  trash: string;
  drafts: string;
}

async function world(): Promise<World> {
  const server = new FakeJmap();
  const inbox = server.addMailbox("inbox", "Inbox").id;
  const drafts = server.addMailbox("drafts", "Drafts").id;
  server.addMailbox("sent", "Sent");
  const trash = server.addMailbox("trash", "Trash").id;
  const archive = server.addMailbox("archive", "Archive").id;
  const factory = new IDBFactory();
  const engine = await newEngine(server, factory);
  const events: EngineEvent[] = [];
  engine.on((event) => events.push(event));
  return { server, factory, engine, events, inbox, archive, trash, drafts };
}

async function newEngine(server: FakeJmap, factory: IDBFactory): Promise<SyncEngine> {
  const client = new JmapClient({ fetch: server.fetch, csrfToken: () => "csrf-1" });
  const cache = await MailCache.open("a1", factory);
  const engine = new SyncEngine({ client, cache, now: () => NOW });
  await engine.restore();
  return engine;
}

let w: World;

beforeEach(async () => {
  w = await world();
});

describe("first sync and changes", () => {
  it("caches the window of kept mailboxes with bodies, and nothing else", async () => {
    const recent = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(2), textBody: "bonjour" });
    const old = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(45) });
    const archived = w.server.addEmail({ mailboxIds: { [w.archive]: true }, receivedAt: daysAgo(1) });

    await w.engine.synchronise();

    expect(w.engine.status).toBe("online");
    expect((await w.engine.cache.emailsIn(w.inbox)).map((e) => e.id)).toEqual([recent.id]);
    expect(await w.engine.cache.getEmail(old.id)).toBeUndefined();
    expect(await w.engine.cache.getEmail(archived.id)).toBeUndefined();
    const body = await w.engine.cache.getBody(recent.id);
    expect(Object.values(body?.bodyValues ?? {}).map((v) => v.value)).toContain("bonjour");
    expect((await w.engine.cache.mailboxes()).map((m) => m.role).sort()).toEqual(
      ["archive", "drafts", "inbox", "sent", "trash"],
    );
    expect(w.server.csrfSeen.every((token) => token === "csrf-1")).toBe(true);
  });

  it("follows created, updated and destroyed emails through Email/changes in one request", async () => {
    const kept = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    const doomed = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();

    const arrived = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(0) });
    w.server.touch(kept.id, { keywords: { $seen: true } });
    w.server.destroy(doomed.id);
    const before = w.server.requests.length;
    await w.engine.synchronise();

    const emailRequests = w.server.requests.slice(before).filter((r) => r.methodCalls.some((c) => c[0] === "Email/changes"));
    expect(emailRequests).toHaveLength(1);
    expect(emailRequests[0]?.methodCalls.map((c) => c[0])).toEqual(["Email/changes", "Email/get", "Email/get"]);
    expect((await w.engine.cache.getEmail(kept.id))?.keywords).toEqual({ $seen: true });
    expect(await w.engine.cache.getEmail(doomed.id)).toBeUndefined();
    expect(await w.engine.cache.getEmail(arrived.id)).toBeDefined();
    expect(await w.engine.cache.getBody(arrived.id)).toBeDefined();
  });

  it("starts again from a clean copy when the server cannot calculate changes", async () => {
    const first = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();
    w.server.destroy(first.id);
    const second = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    w.server.floor = w.server.modseq; // the journal was compacted past our state

    await w.engine.synchronise();

    expect((await w.engine.cache.emailsIn(w.inbox)).map((e) => e.id)).toEqual([second.id]);
  });
});

describe("the action queue", () => {
  it("applies an action locally at once and keeps it durably while offline", async () => {
    const email = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.synchronise();
    expect(w.engine.status).toBe("offline");

    await w.engine.act({ kind: "keyword", emailId: email.id, keyword: "$flagged", value: true });
    expect((await w.engine.cache.getEmail(email.id))?.keywords.$flagged).toBe(true);
    expect(w.server.emails.get(email.id)?.keywords.$flagged).toBeUndefined();

    // A reload (a new engine on the same database) still has the action.
    w.engine.cache.close();
    const reopened = await newEngine(w.server, w.factory);
    expect((await reopened.cache.queued()).map((q) => q.action.kind)).toEqual(["keyword"]);
  });

  it("replays in order on reconnection, each Email/set with ifInState", async () => {
    const email = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.act({ kind: "keyword", emailId: email.id, keyword: "$seen", value: true });
    await w.engine.act({ kind: "move", emailId: email.id, from: w.inbox, to: w.archive });
    await w.engine.act({ kind: "keyword", emailId: email.id, keyword: "$flagged", value: true });
    await w.engine.act({ kind: "send", localId: "local:1", draft: draft("Hello", "m1@example.test"), identityId: "i1" });
    expect((await w.engine.cache.emailsIn(OUTBOX)).map((e) => e.subject)).toEqual(["Hello"]);

    w.server.online = true;
    const before = w.server.requests.length;
    await w.engine.synchronise();

    const stored = w.server.emails.get(email.id);
    expect(stored?.keywords).toEqual({ $seen: true, $flagged: true });
    expect(stored?.mailboxIds).toEqual({ [w.archive]: true });
    expect(w.server.sent.map((s) => [s.subject, s.to])).toEqual([["Hello", ["bob@example.test"]]]);
    const sets = w.server.requests
      .slice(before)
      .flatMap((r) => r.methodCalls)
      .filter((c) => c[0] === "Email/set" && c[1].update);
    expect(sets.map((c) => Object.keys(Object.values(c[1].update as object)[0] as object))).toEqual([
      ["keywords/$seen"],
      [`mailboxIds/${w.inbox}`, `mailboxIds/${w.archive}`],
      ["keywords/$flagged"],
    ]);
    expect(sets.every((c) => typeof c[1].ifInState === "string")).toBe(true);
    expect(await w.engine.cache.queued()).toEqual([]);
    expect(await w.engine.cache.emailsIn(OUTBOX)).toEqual([]);
    // The sent message came back from the server into Sent, out of Drafts.
    const sentCopy = [...w.server.emails.values()].find((e) => e.subject === "Hello");
    expect(sentCopy?.keywords.$draft).toBeUndefined();
    expect(sentCopy?.mailboxIds).toEqual({ [w.server.roleId("sent")]: true });
  });

  it("queues a command on several messages together: one change event, every move replayed", async () => {
    const first = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    const second = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(2) });
    const third = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(3) });
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.synchronise();
    w.events.length = 0;

    await w.engine.actAll([
      { kind: "move", emailId: first.id, from: w.inbox, to: w.archive },
      { kind: "move", emailId: second.id, from: w.inbox, to: w.archive },
    ]);
    expect(w.events.filter((e) => e.type === "changed")).toHaveLength(1);
    expect((await w.engine.cache.emailsIn(w.inbox)).map((e) => e.id)).toEqual([third.id]);
    expect((await w.engine.cache.queued()).map((q) => q.action.kind)).toEqual(["move", "move"]);
    await w.engine.actAll([]);
    expect(await w.engine.cache.queued()).toHaveLength(2);

    w.server.online = true;
    await w.engine.synchronise();
    expect(w.server.emails.get(first.id)?.mailboxIds).toEqual({ [w.archive]: true });
    expect(w.server.emails.get(second.id)?.mailboxIds).toEqual({ [w.archive]: true });
    expect(w.server.emails.get(third.id)?.mailboxIds).toEqual({ [w.inbox]: true });
    expect(await w.engine.cache.queued()).toEqual([]);
  });

  it("looks again when the state changed between its read and its write (stateMismatch)", async () => {
    const email = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    const other = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();
    w.server.beforeNextSet = () => w.server.touch(other.id, { keywords: { $seen: true } });

    await w.engine.act({ kind: "keyword", emailId: email.id, keyword: "$flagged", value: true });
    await w.engine.replay();

    const attempts = w.server.requests.flatMap((r) => r.methodCalls).filter((c) => c[0] === "Email/set");
    expect(attempts).toHaveLength(2);
    expect(w.server.emails.get(email.id)?.keywords.$flagged).toBe(true);
    expect(await w.engine.cache.conflicts()).toEqual([]);
  });

  it("never sends twice when the connection dropped after the server accepted", async () => {
    await w.engine.synchronise();
    w.server.dropNextResponse = true;
    w.server.online = true;
    await w.engine.act({ kind: "send", localId: "local:2", draft: draft("Once", "m2@example.test"), identityId: "i1" });
    await vi.waitFor(() => expect(w.engine.status).toBe("offline"));
    expect(w.server.sent).toHaveLength(1);
    expect((await w.engine.cache.queued())[0]?.inFlight).toBe(true);

    await w.engine.synchronise();

    expect(w.server.sent).toHaveLength(1);
    expect(await w.engine.cache.queued()).toEqual([]);
  });

  it("finishes a send whose message reached Drafts but whose submission did not", async () => {
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.act({ kind: "send", localId: "local:3", draft: draft("Half", "m3@example.test"), identityId: "i1" });
    await vi.waitFor(() => expect(w.engine.status).toBe("offline"));
    // As if the first attempt created the message, then failed before submitting it.
    w.server.addEmail({ mailboxIds: { [w.drafts]: true }, keywords: { $draft: true }, subject: "Half", messageId: ["m3@example.test"] });
    const queued = (await w.engine.cache.queued())[0];
    await w.engine.cache.markInFlight(queued?.seq as number);
    w.server.online = true;

    await w.engine.synchronise();

    expect(w.server.sent.map((s) => s.subject)).toEqual(["Half"]);
    expect([...w.server.emails.values()].filter((e) => e.subject === "Half")).toHaveLength(1);
  });
});

describe("conflicts", () => {
  it("shows an action on a message deleted meanwhile, never drops it", async () => {
    const email = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.act({ kind: "keyword", emailId: email.id, keyword: "$flagged", value: true });
    w.server.destroy(email.id);
    w.server.online = true;

    await w.engine.synchronise();

    const conflicts = await w.engine.cache.conflicts();
    expect(conflicts.map((c) => [c.reason, c.action.kind])).toEqual([["deleted", "keyword"]]);
    expect(w.events.filter((e) => e.type === "conflict")).toHaveLength(1);
    expect(await w.engine.cache.queued()).toEqual([]);
    expect(await w.engine.cache.getEmail(email.id)).toBeUndefined();
    await w.engine.cache.dismissConflict(conflicts[0]?.id as number);
    expect(await w.engine.cache.conflicts()).toEqual([]);
  });

  it("shows a move of a message that another client moved elsewhere", async () => {
    const email = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.act({ kind: "move", emailId: email.id, from: w.inbox, to: w.archive });
    w.server.touch(email.id, { mailboxIds: { [w.trash]: true } });
    w.server.online = true;

    await w.engine.synchronise();

    expect((await w.engine.cache.conflicts()).map((c) => c.reason)).toEqual(["moved-elsewhere"]);
    expect(w.server.emails.get(email.id)?.mailboxIds).toEqual({ [w.trash]: true });
  });

  it("keeps both versions of a draft that was changed elsewhere", async () => {
    const original = w.server.addEmail({
      mailboxIds: { [w.drafts]: true },
      keywords: { $draft: true },
      subject: "Plan",
      receivedAt: daysAgo(1),
    });
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.act({ kind: "save-draft", localId: "local:4", draft: draft("Plan v2", "m4@example.test"), replaces: original.id });
    // Edited in another browser: JMAP drafts are immutable, so that edit replaced it.
    w.server.destroy(original.id);
    w.server.addEmail({ mailboxIds: { [w.drafts]: true }, keywords: { $draft: true }, subject: "Plan (other browser)" });
    w.server.online = true;

    await w.engine.synchronise();

    expect((await w.engine.cache.conflicts()).map((c) => c.reason)).toEqual(["draft-changed"]);
    const subjects = [...w.server.emails.values()].filter((e) => e.mailboxIds[w.drafts]).map((e) => e.subject);
    expect(subjects.sort()).toEqual(["Plan (other browser)", "Plan v2"]);
  });

  it("replaces a draft that nobody else touched", async () => {
    const original = w.server.addEmail({ mailboxIds: { [w.drafts]: true }, keywords: { $draft: true }, subject: "v1" });
    await w.engine.synchronise();
    await w.engine.act({ kind: "save-draft", localId: "local:5", draft: draft("v2", "m5@example.test"), replaces: original.id });
    await w.engine.replay();

    expect(w.server.emails.has(original.id)).toBe(false);
    expect([...w.server.emails.values()].map((e) => e.subject)).toContain("v2");
    expect(await w.engine.cache.conflicts()).toEqual([]);
  });
});

describe("drafts written offline", () => {
  it("chains autosaves by local id and sending removes the last saved draft", async () => {
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.act({ kind: "save-draft", localId: "local:d1", draft: draft("Report", "d1@example.test"), replaces: null });
    await w.engine.act({ kind: "save-draft", localId: "local:d2", draft: draft("Report v2", "d2@example.test"), replaces: "local:d1" });
    await w.engine.act({
      kind: "send",
      localId: "local:s1",
      draft: draft("Report final", "s1@example.test"),
      identityId: "i1",
      replacesDraft: "local:d2",
    });
    // Offline the composer's drafts show in Drafts, one version at a time.
    expect((await w.engine.cache.emailsIn(w.drafts)).map((e) => e.subject)).toEqual(["Report v2"]);
    w.server.online = true;

    await w.engine.synchronise();

    const remaining = [...w.server.emails.values()].map((e) => e.subject);
    expect(remaining).toEqual(["Report final"]);
    expect(w.server.sent.map((s) => s.subject)).toEqual(["Report final"]);
    expect(await w.engine.cache.conflicts()).toEqual([]);
    expect(await w.engine.cache.emailsIn(w.drafts)).toEqual([]);
  });

  it("follows a reopened draft's attachments to each new version, through to the send", async () => {
    const reopened = w.server.addEmail({ mailboxIds: { [w.drafts]: true }, keywords: { $draft: true }, subject: "Plan", messageId: ["p1@example.test"] });
    const part = `part:${reopened.id}:2`;
    reopened.attachmentsStored = [{ blobId: part, name: "plan.pdf", type: "application/pdf", content: "%PDF plan" }];
    await w.engine.synchronise();
    w.server.online = false;
    // The attachment is a part of the draft the first save replaces (destroys).
    const attachments = [{ blobId: part, type: "application/pdf", name: "plan.pdf", size: 9 }];
    const version = (subject: string, id: string): Draft => ({ ...draft(subject, id), attachments });
    await w.engine.act({ kind: "save-draft", localId: "local:p2", draft: version("Plan v2", "p2@example.test"), replaces: reopened.id });
    await w.engine.act({ kind: "save-draft", localId: "local:p3", draft: version("Plan v3", "p3@example.test"), replaces: "local:p2" });
    await w.engine.act({ kind: "send", localId: "local:s", draft: version("Plan final", "ps@example.test"), identityId: "i1", replacesDraft: "local:p3" });
    w.server.online = true;

    await w.engine.synchronise();

    expect(await w.engine.cache.conflicts()).toEqual([]);
    const remaining = [...w.server.emails.values()];
    expect(remaining.map((e) => e.subject)).toEqual(["Plan final"]);
    expect(remaining[0]?.attachmentsStored?.map((a) => [a.name, a.content])).toEqual([["plan.pdf", "%PDF plan"]]);
    expect(w.server.sent.map((s) => s.subject)).toEqual(["Plan final"]);
  });

  it("does not mistake the previous version for an in-flight save", async () => {
    const previous = w.server.addEmail({ mailboxIds: { [w.drafts]: true }, keywords: { $draft: true }, subject: "v1", messageId: ["v1@example.test"] });
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.act({ kind: "save-draft", localId: "local:v2", draft: draft("v2", "v2@example.test"), replaces: previous.id });
    const queued = (await w.engine.cache.queued())[0];
    await w.engine.cache.markInFlight(queued?.seq as number);
    w.server.online = true;

    await w.engine.synchronise();

    expect([...w.server.emails.values()].map((e) => e.subject)).toEqual(["v2"]);
  });
});

describe("the offline window", () => {
  it("prunes what falls out of the window but keeps what the queue names", async () => {
    const recent = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(3) });
    const older = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(20) });
    const queuedOld = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(25) });
    await w.engine.synchronise();
    expect(await w.engine.cache.allEmails()).toHaveLength(3);
    w.server.online = false;
    await w.engine.act({ kind: "keyword", emailId: queuedOld.id, keyword: "$seen", value: true });

    await w.engine.setWindow(7, []);

    const ids = (await w.engine.cache.allEmails()).map((e) => e.id).sort();
    expect(ids).toEqual([recent.id, queuedOld.id].sort());
    expect(await w.engine.cache.getBody(older.id)).toBeUndefined();
  });

  it("keeps chosen folders besides Inbox, Drafts and Sent", async () => {
    const archived = w.server.addEmail({ mailboxIds: { [w.archive]: true }, receivedAt: daysAgo(1) });
    await w.engine.setWindow(30, [w.archive]);
    await w.engine.synchronise();
    expect(await w.engine.cache.getEmail(archived.id)).toBeDefined();
  });

  it("runs syncs one at a time: a folder kept while a pull is in flight is still loaded", async () => {
    const filed = w.server.addEmail({ mailboxIds: { [w.archive]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();
    w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(0) });
    const inFlight = w.engine.synchronise();
    const widened = w.engine.setWindow(30, [w.archive]);
    const after = w.engine.synchronise();
    expect(w.engine.synchronise()).toBe(after);
    await Promise.all([inFlight, widened, after]);
    expect(await w.engine.cache.getEmail(filed.id)).toBeDefined();
    expect(await w.engine.cache.getBody(filed.id)).toBeDefined();
  });

  it("loads what a wider window or a newly kept folder adds, keeping unsent messages", async () => {
    const archived = w.server.addEmail({ mailboxIds: { [w.archive]: true }, receivedAt: daysAgo(1) });
    const older = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(50) });
    await w.engine.synchronise();
    expect(await w.engine.cache.getEmail(older.id)).toBeUndefined();
    w.server.online = false;
    await w.engine.act({ kind: "send", localId: "local:w1", draft: draft("Waiting", "w1@example.test"), identityId: "i1" });
    await vi.waitFor(() => expect(w.engine.status).toBe("offline"));

    await w.engine.setWindow(60, [w.archive]);
    expect((await w.engine.cache.emailsIn(OUTBOX)).map((e) => e.subject)).toEqual(["Waiting"]);
    w.server.online = true;
    await w.engine.synchronise();

    expect(await w.engine.cache.getEmail(older.id)).toBeDefined();
    expect(await w.engine.cache.getEmail(archived.id)).toBeDefined();
    expect(w.server.sent.map((s) => s.subject)).toEqual(["Waiting"]);
  });

  it("announces new unread mail in the Inbox after the first sync, not before", async () => {
    w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();
    expect(w.events.filter((e) => e.type === "arrived")).toEqual([]);
    const fresh = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, subject: "Fresh" });
    w.server.addEmail({ mailboxIds: { [w.inbox]: true }, keywords: { $seen: true }, subject: "Seen elsewhere" });
    w.server.addEmail({ mailboxIds: { [w.archive]: true }, subject: "Filed" });
    await w.engine.synchronise();
    const arrived = w.events.flatMap((e) => (e.type === "arrived" ? e.emails.map((m) => m.id) : []));
    expect(arrived).toEqual([fresh.id]);
  });

  it("shrinks the window and says so when the storage is full", async () => {
    w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    const old = w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(20) });
    const put = w.engine.cache.putEmails.bind(w.engine.cache);
    let failures = 1;
    vi.spyOn(w.engine.cache, "putEmails").mockImplementation(async (...args) => {
      if (failures-- > 0) throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
      return put(...args);
    });

    await w.engine.synchronise();

    expect(w.events).toContainEqual({ type: "window-reduced", days: 15 });
    expect(w.engine.windowDays).toBe(15);
    expect(await w.engine.cache.getMeta("windowDays")).toBe(15);
    expect(await w.engine.cache.allEmails()).toHaveLength(1);
    expect(await w.engine.cache.getEmail(old.id)).toBeUndefined();
    expect(w.engine.status).toBe("online");
  });
});

describe("attachments offline", () => {
  it("keeps attachments up to the size the user set, and no larger", async () => {
    w.server.addEmail({
      mailboxIds: { [w.inbox]: true },
      receivedAt: daysAgo(1),
      attachmentsStored: [
        { blobId: "small", name: "a.txt", type: "text/plain", content: "x".repeat(100) },
        { blobId: "large", name: "b.bin", type: "application/octet-stream", content: "y".repeat(5000) },
      ],
    });
    await w.engine.setAttachmentLimit(1000);
    expect(await w.engine.cache.getMeta("attachmentLimit")).toBe(1000);

    await w.engine.synchronise();

    expect(w.server.downloads).toEqual(["small"]);
    expect(await (await w.engine.cache.getBlob("small"))?.text()).toBe("x".repeat(100));
    expect(await w.engine.cache.getBlob("large")).toBeUndefined();
  });
});

describe("purge", () => {
  it("leaves no database behind, queue and conflicts included", async () => {
    w.server.addEmail({ mailboxIds: { [w.inbox]: true }, receivedAt: daysAgo(1) });
    await w.engine.synchronise();
    w.server.online = false;
    await w.engine.act({ kind: "send", localId: "local:6", draft: draft("Secret", "m6@example.test"), identityId: "i1" });

    await w.engine.purge();

    expect(await w.factory.databases()).toEqual([]);
    const reopened = await MailCache.open("a1", w.factory);
    expect(await reopened.allEmails()).toEqual([]);
    expect(await reopened.queued()).toEqual([]);
    expect(await reopened.getMeta("state:Email")).toBeUndefined();
  });
});

describe("the in-memory copy (offline use not chosen on this computer)", () => {
  it("keeps headers without bodies when told to", async () => {
    const server = new FakeJmap();
    const inbox = server.addMailbox("inbox", "Inbox").id;
    const email = server.addEmail({ mailboxIds: { [inbox]: true }, receivedAt: daysAgo(1) });
    const cache = new MemoryMailCache();
    const engine = new SyncEngine({ client: new JmapClient({ fetch: server.fetch }), cache, now: () => NOW, bodies: false });
    await engine.synchronise();
    expect(await cache.getEmail(email.id)).toBeDefined();
    expect(await cache.getBody(email.id)).toBeUndefined();
    const gets = server.requests.flatMap((r) => r.methodCalls).filter((c) => c[0] === "Email/get");
    expect(gets.every((c) => !(c[1].properties as string[]).includes("bodyValues"))).toBe(true);
  });

  it("queues, replays, reports conflicts and purges like the IndexedDB one", async () => {
    const server = new FakeJmap();
    const inbox = server.addMailbox("inbox", "Inbox").id;
    server.addMailbox("drafts", "Drafts");
    const archive = server.addMailbox("archive", "Archive").id;
    const moved = server.addEmail({ mailboxIds: { [inbox]: true }, receivedAt: daysAgo(1) });
    const doomed = server.addEmail({ mailboxIds: { [inbox]: true }, receivedAt: daysAgo(1) });
    const cache = new MemoryMailCache();
    const engine = new SyncEngine({ client: new JmapClient({ fetch: server.fetch }), cache, now: () => NOW });
    await engine.synchronise();
    expect(await cache.allEmails()).toHaveLength(2);

    server.online = false;
    await engine.act({ kind: "move", emailId: moved.id, from: inbox, to: archive });
    await engine.act({ kind: "keyword", emailId: doomed.id, keyword: "$seen", value: true });
    await vi.waitFor(() => expect(engine.status).toBe("offline"));
    expect((await cache.emailsIn(inbox)).map((e) => e.id)).toEqual([doomed.id]);
    server.destroy(doomed.id);
    server.online = true;
    await engine.synchronise();

    expect(server.emails.get(moved.id)?.mailboxIds).toEqual({ [archive]: true });
    expect((await cache.conflicts()).map((c) => c.reason)).toEqual(["deleted"]);
    expect(await cache.queued()).toEqual([]);
    await engine.purge();
    expect(await cache.allEmails()).toEqual([]);
    expect(await cache.conflicts()).toEqual([]);
  });
});
