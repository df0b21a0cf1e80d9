/**
 * What the user can do offline, as data: each action is queued durably, applied to the
 * local copy at once, and replayed in order as JMAP calls (RFC 8621 §4.6 Email/set,
 * §7.5 EmailSubmission/set) when the connection returns.
 */

import type { EmailAddress, Id } from "../jmap/types";

export interface Attachment {
  blobId: Id;
  type: string;
  name: string;
  size: number;
}

/** A message as the composer hands it over. */
export interface Draft {
  from: EmailAddress[];
  to: EmailAddress[];
  cc: EmailAddress[];
  bcc: EmailAddress[];
  subject: string;
  textBody: string;
  htmlBody: string | null;
  inReplyTo: string[] | null;
  references: string[] | null;
  /** Chosen here, so a replay can tell whether the server already has the message. */
  messageId: string;
  attachments: Attachment[];
}

export type Action =
  /** Flag ($flagged), mark read ($seen), mark as junk ($junk) and their reverse. */
  | { kind: "keyword"; emailId: Id; keyword: string; value: boolean }
  /** Move (delete to Trash, archive and junk are moves too). */
  | { kind: "move"; emailId: Id; from: Id; to: Id }
  /** Delete for good (from Trash). */
  | { kind: "destroy"; emailId: Id }
  /**
   * Send: the message waits in the Outbox until the server accepts it; the composer's
   * autosaved draft (a server id, or the local id of a save still queued) goes away then.
   */
  | { kind: "send"; localId: Id; draft: Draft; identityId: Id; replacesDraft?: Id | null }
  /**
   * Save a draft, replacing the previous version (drafts are immutable in JMAP). Each save
   * carries a Message-ID of its own, so a replay can tell the versions apart.
   */
  | { kind: "save-draft"; localId: Id; draft: Draft; replaces: Id | null };

/** The server ids an action names: pruning keeps them, conflicts are checked on them. */
export function targets(action: Action): Id[] {
  switch (action.kind) {
    case "keyword":
    case "move":
    case "destroy":
      return [action.emailId];
    case "save-draft":
      return action.replaces === null ? [] : [action.replaces];
    case "send":
      return action.replacesDraft ? [action.replacesDraft] : [];
  }
}

/** A Message-ID for a message written here (RFC 5322 §3.6.4), without angle brackets. */
export function newMessageId(domain: string): string {
  const random = crypto.getRandomValues(new Uint8Array(16));
  const text = Array.from(random, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `${text}@${domain}`;
}

/** RFC 8621 §4.6: the Email/set create object of a draft. */
export function emailCreate(draft: Draft, mailboxId: Id, keywords: Record<string, true>): Record<string, unknown> {
  const bodyValues: Record<string, { value: string }> = { text: { value: draft.textBody } };
  const textPart = { partId: "text", type: "text/plain" };
  let body: Record<string, unknown>;
  if (draft.htmlBody !== null) {
    bodyValues.html = { value: draft.htmlBody };
    const alternative = {
      type: "multipart/alternative",
      subParts: [textPart, { partId: "html", type: "text/html" }],
    };
    body = draft.attachments.length
      ? { bodyStructure: { type: "multipart/mixed", subParts: [alternative, ...attachmentParts(draft)] } }
      : { bodyStructure: alternative };
  } else if (draft.attachments.length) {
    body = { bodyStructure: { type: "multipart/mixed", subParts: [textPart, ...attachmentParts(draft)] } };
  } else {
    body = { textBody: [textPart] };
  }
  return {
    mailboxIds: { [mailboxId]: true },
    keywords,
    from: draft.from,
    to: draft.to,
    ...(draft.cc.length ? { cc: draft.cc } : {}),
    ...(draft.bcc.length ? { bcc: draft.bcc } : {}),
    subject: draft.subject,
    messageId: [draft.messageId],
    ...(draft.inReplyTo ? { inReplyTo: draft.inReplyTo } : {}),
    ...(draft.references ? { references: draft.references } : {}),
    bodyValues,
    ...body,
  };
}

function attachmentParts(draft: Draft): Record<string, unknown>[] {
  return draft.attachments.map((a) => ({ blobId: a.blobId, type: a.type, name: a.name, disposition: "attachment" }));
}
