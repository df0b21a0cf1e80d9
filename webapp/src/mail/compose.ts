/**
 * What the composer starts from: replies and forwards (RFC 5322 §3.6.4 In-Reply-To and
 * References; subjects prefixed once), saved drafts reopened, address lists as typed, and
 * quoting.
 */

import type { Email, EmailAddress, EmailBody } from "../jmap/types";
import { type Attachment, type Draft, newMessageId } from "../sync/actions";
import { quotedHtml, sanitizeComposed, textToHtml } from "./richText";

/** "Alice <a@x.org>, b@y.org" → addresses; what is not an address is left out. */
export function parseAddresses(text: string): EmailAddress[] {
  const result: EmailAddress[] = [];
  // Split on commas and semicolons outside quotes and angle brackets.
  const parts: string[] = [];
  let current = "";
  let quoted = false;
  let angle = false;
  for (const char of text) {
    if (char === '"') quoted = !quoted;
    else if (char === "<" && !quoted) angle = true;
    else if (char === ">" && !quoted) angle = false;
    if ((char === "," || char === ";") && !quoted && !angle) {
      parts.push(current);
      current = "";
    } else current += char;
  }
  parts.push(current);
  for (const part of parts) {
    const trimmed = part.trim();
    if (!trimmed) continue;
    const match = /^(.*?)\s*<([^<>\s]+@[^<>\s]+)>$/.exec(trimmed);
    if (match) {
      const name = (match[1] ?? "").trim().replace(/^"(.*)"$/, "$1");
      result.push({ name: name || null, email: match[2] ?? "" });
    } else if (/^[^\s@<>]+@[^\s@<>]+$/.test(trimmed)) {
      result.push({ name: null, email: trimmed });
    }
  }
  return result;
}

/** Where the address being typed starts: after the last comma or semicolon outside quotes. */
export function currentToken(text: string): { before: string; token: string } {
  let quoted = false;
  let angle = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') quoted = !quoted;
    else if (char === "<" && !quoted) angle = true;
    else if (char === ">" && !quoted) angle = false;
    else if ((char === "," || char === ";") && !quoted && !angle) start = i + 1;
  }
  return { before: text.slice(0, start), token: text.slice(start) };
}

export function formatAddresses(list: EmailAddress[] | null): string {
  return (list ?? [])
    .map((a) => (a.name ? `${/[",;<>]/.test(a.name) ? `"${a.name.replace(/"/g, "")}"` : a.name} <${a.email}>` : a.email))
    .join(", ");
}

function prefixed(prefix: string, subject: string | null): string {
  const text = (subject ?? "").trim();
  return new RegExp(`^${prefix}\\s*:`, "i").test(text) ? text : `${prefix}: ${text}`;
}

function quote(text: string): string {
  return text
    .replace(/\s+$/, "")
    .split("\n")
    .map((line) => (line.startsWith(">") ? `>${line}` : `> ${line}`))
    .join("\n");
}

function without(list: EmailAddress[], self: string): EmailAddress[] {
  const seen = new Set<string>([self.toLowerCase()]);
  return list.filter((a) => {
    const key = a.email.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export interface ComposeStart {
  from: EmailAddress;
  domain: string;
  /** Write in rich text (the draft then has an htmlBody; null means plain text). */
  rich?: boolean;
}

/** The message being answered or forwarded: its text, and its HTML when it has some. */
export interface Original {
  text: string;
  html: string | null;
}

export function blankDraft(start: ComposeStart): Draft {
  const { from, domain } = start;
  return {
    from: [from],
    to: [],
    cc: [],
    bcc: [],
    subject: "",
    textBody: "",
    htmlBody: start.rich ? "" : null,
    inReplyTo: null,
    references: null,
    messageId: newMessageId(domain),
    attachments: [],
  };
}

/**
 * A reply (or reply to all) to ``email``: its text quoted with "> ", and in rich text its
 * HTML (made safe) in a blockquote.
 */
export function replyDraft(email: Email, original: Original, start: ComposeStart, { all }: { all: boolean }): Draft {
  const self = start.from.email;
  const to = email.replyTo?.length ? email.replyTo : (email.from ?? []);
  const cc = all ? without([...(email.to ?? []), ...(email.cc ?? [])], self).filter((a) => !to.some((t) => t.email === a.email)) : [];
  const references = [...(email.references ?? []), ...(email.messageId ?? [])];
  const sender = email.from?.[0];
  const intro = sender ? `${sender.name ?? sender.email} <${sender.email}>:` : "";
  return {
    ...blankDraft(start),
    to: without(to, all ? self : ""),
    cc,
    subject: prefixed("Re", email.subject),
    textBody: `\n\n${intro}\n${quote(original.text)}`,
    htmlBody: start.rich ? quotedHtml(intro, original) : null,
    inReplyTo: email.messageId ?? null,
    references: references.length ? references : null,
  };
}

/** A forward of ``email``: its text (or HTML) under a header, its attachments attached again. */
export function forwardDraft(email: Email, original: Original, attachments: Attachment[], start: ComposeStart): Draft {
  const header = [
    "---------- Forwarded message ----------",
    `From: ${formatAddresses(email.from)}`,
    `Date: ${email.sentAt ?? email.receivedAt}`,
    `Subject: ${email.subject ?? ""}`,
    `To: ${formatAddresses(email.to)}`,
  ].join("\n");
  const forwarded = original.html !== null ? sanitizeComposed(original.html) : textToHtml(original.text);
  return {
    ...blankDraft(start),
    subject: prefixed("Fwd", email.subject),
    textBody: `\n\n${header}\n\n${original.text}`,
    htmlBody: start.rich ? `<p><br></p>${textToHtml(header)}${forwarded}` : null,
    attachments,
  };
}

/**
 * A saved draft (RFC 8621 §4.1.1 keyword ``$draft``) back into the composer: its sender,
 * recipients, subject, body (its HTML when it has a text/html part, else its text), its
 * attachments by blobId (sent again without uploading) and its In-Reply-To/References.
 *
 * Null when the body at hand is incomplete (a truncated value, as the offline preview is):
 * editing it and saving would replace the draft with a cut version. The Message-ID is new:
 * the saved one names that saved version, and a replayed send looks its message up by it.
 */
export function draftFromEmail(
  email: Email,
  body: EmailBody,
  { domain, attachmentName }: { domain: string; attachmentName: string },
): Draft | null {
  const value = (partId: string | null) => (partId ? body.bodyValues[partId] : undefined);
  const textParts = body.textBody.filter((part) => part.type.startsWith("text/"));
  const htmlPart = body.htmlBody.find((part) => part.type === "text/html");
  const used = [...textParts.map((part) => value(part.partId)), ...(htmlPart ? [value(htmlPart.partId)] : [])];
  if (used.some((v) => v === undefined || v.isTruncated)) return null;
  const text = textParts.map((part) => value(part.partId)?.value ?? "").join("\n");
  const html = htmlPart ? (value(htmlPart.partId)?.value ?? "") : null;
  const sender = email.from?.[0];
  return {
    from: email.from ?? [],
    to: email.to ?? [],
    cc: email.cc ?? [],
    bcc: email.bcc ?? [],
    subject: email.subject ?? "",
    textBody: text.replace(/\r\n/g, "\n"),
    // What comes back from the server is re-sanitised like anything entering the editor.
    htmlBody: html === null ? null : sanitizeComposed(html),
    inReplyTo: email.inReplyTo,
    references: email.references,
    messageId: newMessageId(sender?.email.split("@")[1] ?? domain),
    attachments: body.attachments.flatMap((part) =>
      part.blobId ? [{ blobId: part.blobId, type: part.type, name: part.name ?? attachmentName, size: part.size }] : [],
    ),
  };
}
