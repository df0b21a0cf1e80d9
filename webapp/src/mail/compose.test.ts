// @vitest-environment jsdom
import { describe, expect, it } from "vitest";

import type { Email } from "../jmap/types";
import { blankDraft, currentToken, formatAddresses, forwardDraft, parseAddresses, replyDraft } from "./compose";

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
    const reply = replyDraft(original, { text: "line one\n> older", html: null }, start, { all: false });
    expect(reply.to).toEqual([{ name: "Bob", email: "bob@example.test" }]);
    expect(reply.cc).toEqual([]);
    expect(reply.subject).toBe("Re: Plans");
    expect(reply.inReplyTo).toEqual(["orig@example.test"]);
    expect(reply.references).toEqual(["root@example.test", "orig@example.test"]);
    expect(reply.textBody).toContain("> line one\n>> older");
    expect(replyDraft({ ...original, subject: "RE: Plans" }, { text: "", html: null }, start, { all: false }).subject).toBe("RE: Plans");
  });

  it("reply to all leaves oneself out and keeps the others in Cc", () => {
    const reply = replyDraft(original, { text: "", html: null }, start, { all: true });
    expect(reply.to.map((a) => a.email)).toEqual(["bob@example.test"]);
    expect(reply.cc.map((a) => a.email)).toEqual(["carol@example.test", "dave@example.test"]);
  });

  it("forward carries the text and the attachments", () => {
    const attachment = { blobId: "blob9", type: "application/pdf", name: "plan.pdf", size: 100 };
    const forward = forwardDraft(original, { text: "the text", html: null }, [attachment], start);
    expect(forward.subject).toBe("Fwd: Plans");
    expect(forward.to).toEqual([]);
    expect(forward.textBody).toContain("From: Bob <bob@example.test>");
    expect(forward.textBody).toContain("the text");
    expect(forward.attachments).toEqual([attachment]);
    expect(forward.messageId).toMatch(/^[0-9a-f]{32}@example\.test$/);
    expect(forward.htmlBody).toBeNull();
  });

  it("in rich text, quotes the original's HTML made safe, and keeps the text version too", () => {
    const rich = { ...start, rich: true };
    const reply = replyDraft(original, { text: "Hi", html: '<p onclick="x()">Hi <b>there</b></p><script>x()</script>' }, rich, { all: false });
    expect(reply.htmlBody).toBe('<p><br></p><p>Bob &lt;bob@example.test&gt;:</p><blockquote type="cite"><p>Hi <b>there</b></p></blockquote>');
    expect(reply.textBody).toContain("> Hi");
    const forward = forwardDraft(original, { text: "plain only", html: null }, [], rich);
    expect(forward.htmlBody).toContain("---------- Forwarded message ----------<br>From: Bob &lt;bob@example.test&gt;");
    expect(forward.htmlBody).toContain("<p>plain only</p>");
    expect(blankDraft(rich).htmlBody).toBe("");
    expect(blankDraft(start).htmlBody).toBeNull();
  });
});

describe("the address being typed", () => {
  it("starts after the last comma or semicolon outside quotes and angle brackets", () => {
    expect(currentToken("jea")).toEqual({ before: "", token: "jea" });
    expect(currentToken("Bob <b@x.test>, jea")).toEqual({ before: "Bob <b@x.test>,", token: " jea" });
    expect(currentToken('"Dupont, Jean" <j@x.test>; ma')).toEqual({ before: '"Dupont, Jean" <j@x.test>;', token: " ma" });
    expect(currentToken('"Dupont, Je')).toEqual({ before: "", token: '"Dupont, Je' });
  });
});
