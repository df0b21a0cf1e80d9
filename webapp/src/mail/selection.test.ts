import { describe, expect, it } from "vitest";

import type { Email, Mailbox } from "../jmap/types";
import { EMPTY_SELECTION, dragPayload, dropActions, extend, rangeIndexes, selectionActions, toggle } from "./selection";

function email(id: string, mailboxIds: Record<string, true>, keywords: Record<string, true> = {}): Email {
  return {
    id,
    blobId: `b-${id}`,
    threadId: `t-${id}`,
    mailboxIds,
    keywords,
    size: 1,
    receivedAt: "2026-11-20T10:00:00Z",
    messageId: null,
    inReplyTo: null,
    references: null,
    from: null,
    to: null,
    cc: null,
    bcc: null,
    replyTo: null,
    subject: id,
    sentAt: null,
    hasAttachment: false,
    preview: "",
  };
}

function mailbox(id: string, role: string | null): Mailbox {
  return { id, name: id, parentId: null, role, sortOrder: 0, totalEmails: 0, unreadEmails: 0, totalThreads: 0, unreadThreads: 0, isSubscribed: true };
}

const boxes = [mailbox("in", "inbox"), mailbox("ar", "archive"), mailbox("tr", "trash"), mailbox("ju", "junk"), mailbox("pr", null)];
const a = email("a", { in: true });
const b = email("b", { in: true }, { $flagged: true, $seen: true });
const c = email("c", { in: true });

describe("selecting", () => {
  it("toggles one message and moves the anchor to it", () => {
    let selection = toggle(EMPTY_SELECTION, a, 3);
    selection = toggle(selection, b, 5);
    expect([...selection.emails.keys()]).toEqual(["a", "b"]);
    expect(selection.anchor).toBe(5);
    selection = toggle(selection, a, 3);
    expect([...selection.emails.keys()]).toEqual(["b"]);
    expect(EMPTY_SELECTION.emails.size).toBe(0);
  });

  it("takes the range from the anchor in either direction", () => {
    expect(rangeIndexes(2, 6)).toEqual([2, 6]);
    expect(rangeIndexes(6, 2)).toEqual([2, 6]);
    expect(rangeIndexes(null, 4)).toEqual([4, 4]);
  });

  it("replaces the selection with a range, or adds it with Ctrl held, keeping the anchor", () => {
    const start = toggle(EMPTY_SELECTION, c, 9);
    const replaced = extend({ ...start, anchor: 1 }, [a, b]);
    expect([...replaced.emails.keys()]).toEqual(["a", "b"]);
    expect(replaced.anchor).toBe(1);
    const added = extend(start, [a, b], { add: true });
    expect([...added.emails.keys()].sort()).toEqual(["a", "b", "c"]);
  });
});

describe("commands on the selection", () => {
  const where = { listed: "in", mailboxes: boxes };

  it("flags and marks only what would change", () => {
    expect(selectionActions("flag", [a, b, c], where)).toEqual([
      { kind: "keyword", emailId: "a", keyword: "$flagged", value: true },
      { kind: "keyword", emailId: "c", keyword: "$flagged", value: true },
    ]);
    expect(selectionActions("unflag", [a, b], where)).toEqual([{ kind: "keyword", emailId: "b", keyword: "$flagged", value: false }]);
    expect(selectionActions("read", [a, b], where).map((x) => x.kind === "keyword" && x.emailId)).toEqual(["a"]);
    expect(selectionActions("unread", [a, b], where)).toEqual([{ kind: "keyword", emailId: "b", keyword: "$seen", value: false }]);
  });

  it("archives, junks, deletes to Trash and moves, from the listed mailbox", () => {
    expect(selectionActions("archive", [a, c], where)).toEqual([
      { kind: "move", emailId: "a", from: "in", to: "ar" },
      { kind: "move", emailId: "c", from: "in", to: "ar" },
    ]);
    expect(selectionActions("junk", [a], where)).toEqual([{ kind: "move", emailId: "a", from: "in", to: "ju" }]);
    expect(selectionActions("delete", [a], where)).toEqual([{ kind: "move", emailId: "a", from: "in", to: "tr" }]);
    expect(selectionActions({ moveTo: "pr" }, [a], where)).toEqual([{ kind: "move", emailId: "a", from: "in", to: "pr" }]);
  });

  it("deletes for good in Trash, and skips moves to where a message already is", () => {
    const trashed = email("t", { tr: true });
    expect(selectionActions("delete", [trashed], { listed: "tr", mailboxes: boxes })).toEqual([{ kind: "destroy", emailId: "t" }]);
    expect(selectionActions({ moveTo: "in" }, [a], where)).toEqual([]);
    expect(selectionActions("archive", [a], { listed: "in", mailboxes: [mailbox("in", "inbox")] })).toEqual([]);
  });

  it("moves search results out of their own mailbox", () => {
    const archived = email("x", { ar: true });
    expect(selectionActions("delete", [archived, a], { listed: null, mailboxes: boxes })).toEqual([
      { kind: "move", emailId: "x", from: "ar", to: "tr" },
      { kind: "move", emailId: "a", from: "in", to: "tr" },
    ]);
  });
});

describe("drag and drop", () => {
  it("drags the whole selection when the dragged row is in it, else that row alone", () => {
    const selection = toggle(toggle(EMPTY_SELECTION, a, 0), c, 2);
    expect(dragPayload(selection, c, "in").items.map((i) => i.emailId)).toEqual(["a", "c"]);
    expect(dragPayload(selection, b, "in").items).toEqual([{ emailId: "b", from: "in" }]);
  });

  it("turns a drop into moves, ignoring what is already there and malformed payloads", () => {
    const payload = JSON.parse(JSON.stringify(dragPayload(toggle(toggle(EMPTY_SELECTION, a, 0), b, 1), a, "in")));
    expect(dropActions(payload, "ar")).toEqual([
      { kind: "move", emailId: "a", from: "in", to: "ar" },
      { kind: "move", emailId: "b", from: "in", to: "ar" },
    ]);
    expect(dropActions(payload, "in")).toEqual([]);
    expect(dropActions({ emailId: "a" }, "ar")).toEqual([]);
    expect(dropActions({ items: [{ emailId: 3, from: "in" }, null] }, "ar")).toEqual([]);
    expect(dropActions(null, "ar")).toEqual([]);
  });
});
