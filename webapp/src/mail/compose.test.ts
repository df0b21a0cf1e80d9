// @vitest-environment jsdom
import { describe, expect, it } from "vitest";

import type { Email, EmailBody, EmailBodyPart } from "../jmap/types";
import { blankDraft, currentToken, draftFromEmail, formatAddresses, forwardDraft, parseAddresses, replyDraft } from "./compose";

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

function part(partId: string | null, type: string, extra: Partial<EmailBodyPart> = {}): EmailBodyPart {
  return { partId, blobId: null, size: 0, name: null, type, charset: null, disposition: null, cid: null, ...extra };
}

describe("a saved draft reopened", () => {
  const saved: Email = {
    ...original,
    id: "d1",
    keywords: { $draft: true, $seen: true },
    messageId: ["old-save@example.test"],
    inReplyTo: ["orig@example.test"],
    references: ["root@example.test", "orig@example.test"],
    from: [{ name: "Alice", email: "alice@other.test" }],
    to: [{ name: "Bob", email: "bob@example.test" }],
    cc: [{ name: null, email: "carol@example.test" }],
    bcc: [{ name: null, email: "dave@example.test" }],
    subject: "Re: Plans",
  };
  const pdf = part(null, "application/pdf", { blobId: "blob7", size: 1234, name: "plan.pdf", disposition: "attachment" });
  const options = { domain: "example.test", attachmentName: "attachment" };

  it("keeps the sender, recipients, subject, threading and attachments, with a new Message-ID", () => {
    const body: EmailBody = {
      emailId: "d1",
      bodyValues: { "1": { value: "Line one\r\nLine two", isEncodingProblem: false, isTruncated: false } },
      textBody: [part("1", "text/plain")],
      htmlBody: [part("1", "text/plain")],
      attachments: [pdf, part(null, "image/png", { blobId: "blob8", size: 10 })],
    };
    const draft = draftFromEmail(saved, body, options);
    expect(draft).not.toBeNull();
    if (!draft) return;
    expect(draft.from).toEqual(saved.from);
    expect(draft.to).toEqual(saved.to);
    expect(draft.cc).toEqual(saved.cc);
    expect(draft.bcc).toEqual(saved.bcc);
    expect(draft.subject).toBe("Re: Plans");
    expect(draft.textBody).toBe("Line one\nLine two");
    expect(draft.htmlBody).toBeNull();
    expect(draft.inReplyTo).toEqual(["orig@example.test"]);
    expect(draft.references).toEqual(["root@example.test", "orig@example.test"]);
    expect(draft.attachments).toEqual([
      { blobId: "blob7", type: "application/pdf", name: "plan.pdf", size: 1234 },
      { blobId: "blob8", type: "image/png", name: "attachment", size: 10 },
    ]);
    // A replayed send finds its message by Message-ID: it must not be the old save's.
    expect(draft.messageId).toMatch(/^[0-9a-f]{32}@other\.test$/);
    expect(draft.messageId).not.toBe("old-save@example.test");
  });

  it("takes the HTML part into the rich editor, made safe, and the text alongside", () => {
    const body: EmailBody = {
      emailId: "d1",
      bodyValues: {
        "1": { value: "Hello bold", isEncodingProblem: false, isTruncated: false },
        "2": { value: '<p onclick="x()">Hello <b>bold</b></p><script>x()</script>', isEncodingProblem: false, isTruncated: false },
      },
      textBody: [part("1", "text/plain")],
      htmlBody: [part("2", "text/html")],
      attachments: [],
    };
    const draft = draftFromEmail({ ...saved, subject: null, cc: null, bcc: null, inReplyTo: null, references: null }, body, options);
    expect(draft?.htmlBody).toBe("<p>Hello <b>bold</b></p>");
    expect(draft?.textBody).toBe("Hello bold");
    expect(draft?.subject).toBe("");
    expect(draft?.cc).toEqual([]);
    expect(draft?.bcc).toEqual([]);
    expect(draft?.inReplyTo).toBeNull();
    expect(draft?.references).toBeNull();
  });

  it("refuses a body that is not all there (the offline preview), rather than cut the draft", () => {
    const truncated: EmailBody = {
      emailId: "d1",
      bodyValues: { "0": { value: "Line one", isEncodingProblem: false, isTruncated: true } },
      textBody: [part("0", "text/plain")],
      htmlBody: [part("0", "text/plain")],
      attachments: [],
    };
    expect(draftFromEmail(saved, truncated, options)).toBeNull();
    const missing: EmailBody = { ...truncated, bodyValues: {} };
    expect(draftFromEmail(saved, missing, options)).toBeNull();
  });
});
