import { describe, expect, it } from "vitest";

import type { Email } from "../jmap/types";
import { formatAddresses, forwardDraft, parseAddresses, replyDraft } from "./compose";

const start = { from: { name: "Alice", email: "alice@example.test" }, domain: "example.test" };

const original: Email = {
  id: "e1",
  blobId: "b1",
  threadId: "t1",
  mailboxIds: { m1: true },
  keywords: {},
  size: 10,
  receivedAt: "2026-11-20T10:00:00Z",
  messageId: ["orig@example.test"],
  inReplyTo: null,
  references: ["root@example.test"],
  from: [{ name: "Bob", email: "bob@example.test" }],
  to: [{ name: "Alice", email: "alice@example.test" }, { name: null, email: "carol@example.test" }],
  cc: [{ name: null, email: "dave@example.test" }],
  bcc: null,
  replyTo: null,
  subject: "Plans",
  sentAt: "2026-11-20T10:00:00Z",
  hasAttachment: false,
  preview: "",
};

describe("addresses", () => {
  it("parse what people type, and round-trip", () => {
    const parsed = parseAddresses('Bob <bob@example.test>, carol@example.test; "Martin, Dave" <dave@example.test>, nonsense');
    expect(parsed).toEqual([
      { name: "Bob", email: "bob@example.test" },
      { name: null, email: "carol@example.test" },
      { name: "Martin, Dave", email: "dave@example.test" },
    ]);
    expect(parseAddresses(formatAddresses(parsed))).toEqual(parsed);
    expect(parseAddresses("")).toEqual([]);
  });
});

describe("replies and forwards", () => {
  it("reply to the sender, threaded, quoted, subject prefixed once", () => {
    const reply = replyDraft(original, "line one\n> older", start, { all: false });
    expect(reply.to).toEqual([{ name: "Bob", email: "bob@example.test" }]);
    expect(reply.cc).toEqual([]);
    expect(reply.subject).toBe("Re: Plans");
    expect(reply.inReplyTo).toEqual(["orig@example.test"]);
    expect(reply.references).toEqual(["root@example.test", "orig@example.test"]);
    expect(reply.textBody).toContain("> line one\n>> older");
    expect(replyDraft({ ...original, subject: "RE: Plans" }, "", start, { all: false }).subject).toBe("RE: Plans");
  });

  it("reply to all leaves oneself out and keeps the others in Cc", () => {
    const reply = replyDraft(original, "", start, { all: true });
    expect(reply.to.map((a) => a.email)).toEqual(["bob@example.test"]);
    expect(reply.cc.map((a) => a.email)).toEqual(["carol@example.test", "dave@example.test"]);
  });

  it("forward carries the text and the attachments", () => {
    const attachment = { blobId: "blob9", type: "application/pdf", name: "plan.pdf", size: 100 };
    const forward = forwardDraft(original, "the text", [attachment], start);
    expect(forward.subject).toBe("Fwd: Plans");
    expect(forward.to).toEqual([]);
    expect(forward.textBody).toContain("From: Bob <bob@example.test>");
    expect(forward.textBody).toContain("the text");
    expect(forward.attachments).toEqual([attachment]);
    expect(forward.messageId).toMatch(/^[0-9a-f]{32}@example\.test$/);
  });
});
