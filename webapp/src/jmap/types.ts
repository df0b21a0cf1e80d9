/**
 * The JMAP types the webmail uses, in one place (STYLE.md "The webmail").
 *
 * RFC 8620 (JMAP core: session, request/response, result references, errors, push) and
 * RFC 8621 (JMAP for Mail: Mailbox, Email, Thread, Identity, EmailSubmission).
 */

export type Id = string;
export type UTCDate = string;

/** RFC 8620 §3.2: [name, arguments, method call id]. */
export type Invocation = [string, Record<string, unknown>, string];

export const CORE = "urn:ietf:params:jmap:core";
export const MAIL = "urn:ietf:params:jmap:mail";
export const SUBMISSION = "urn:ietf:params:jmap:submission";
/** RFC 9610 (JMAP for Contacts) and RFC 9670 (JMAP Sharing: Principals). */
export const CONTACTS = "urn:ietf:params:jmap:contacts";
export const PRINCIPALS = "urn:ietf:params:jmap:principals";

/** RFC 8620 §3.3 */
export interface JmapRequest {
  using: string[];
  methodCalls: Invocation[];
  createdIds?: Record<Id, Id>;
}

/** RFC 8620 §3.4 */
export interface JmapResponse {
  methodResponses: Invocation[];
  createdIds?: Record<Id, Id>;
  sessionState: string;
}

/** RFC 8620 §3.7: a back-reference to a previous call's result. */
export interface ResultReference {
  resultOf: string;
  name: string;
  path: string;
}

/** RFC 8620 §2 */
export interface JmapAccount {
  name: string;
  isPersonal: boolean;
  isReadOnly: boolean;
  accountCapabilities: Record<string, unknown>;
}

/** RFC 8620 §2: the session resource. */
export interface Session {
  capabilities: Record<string, unknown>;
  accounts: Record<Id, JmapAccount>;
  primaryAccounts: Record<string, Id>;
  username: string;
  apiUrl: string;
  downloadUrl: string;
  uploadUrl: string;
  eventSourceUrl: string;
  state: string;
}

/** RFC 8621 §2 */
export interface Mailbox {
  id: Id;
  name: string;
  parentId: Id | null;
  role: string | null;
  sortOrder: number;
  totalEmails: number;
  unreadEmails: number;
  totalThreads: number;
  unreadThreads: number;
  isSubscribed: boolean;
}

/** RFC 8621 §4.1.2.3 */
export interface EmailAddress {
  name: string | null;
  email: string;
}

/** RFC 8621 §4.1.4 */
export interface EmailBodyPart {
  partId: string | null;
  blobId: Id | null;
  size: number;
  name: string | null;
  type: string;
  charset: string | null;
  disposition: string | null;
  cid: string | null;
}

/** RFC 8621 §4.1.4: a decoded text part. */
export interface EmailBodyValue {
  value: string;
  isEncodingProblem: boolean;
  isTruncated: boolean;
}

/** RFC 8621 §4.1: the properties the list and the cache keep. */
export interface Email {
  id: Id;
  blobId: Id;
  threadId: Id;
  mailboxIds: Record<Id, true>;
  keywords: Record<string, true>;
  size: number;
  receivedAt: UTCDate;
  messageId: string[] | null;
  inReplyTo: string[] | null;
  references: string[] | null;
  from: EmailAddress[] | null;
  to: EmailAddress[] | null;
  cc: EmailAddress[] | null;
  bcc: EmailAddress[] | null;
  replyTo: EmailAddress[] | null;
  subject: string | null;
  sentAt: UTCDate | null;
  hasAttachment: boolean;
  preview: string;
}

/** The body of one email: fetched on demand online, kept with the email offline. */
export interface EmailBody {
  emailId: Id;
  bodyValues: Record<string, EmailBodyValue>;
  textBody: EmailBodyPart[];
  htmlBody: EmailBodyPart[];
  attachments: EmailBodyPart[];
}

export const EMAIL_PROPERTIES = [
  "id",
  "blobId",
  "threadId",
  "mailboxIds",
  "keywords",
  "size",
  "receivedAt",
  "messageId",
  "inReplyTo",
  "references",
  "from",
  "to",
  "cc",
  "bcc",
  "replyTo",
  "subject",
  "sentAt",
  "hasAttachment",
  "preview",
] as const;

export const BODY_PROPERTIES = ["bodyValues", "textBody", "htmlBody", "attachments"] as const;

/** RFC 8621 §6 */
export interface Identity {
  id: Id;
  name: string;
  email: string;
  replyTo: EmailAddress[] | null;
  bcc: EmailAddress[] | null;
  textSignature: string;
  htmlSignature: string;
  mayDelete: boolean;
}

/** RFC 8620 §5.3: why one object of a /set was not created, updated or destroyed. */
export interface SetError {
  type: string;
  description?: string;
  properties?: string[];
}

/** RFC 8620 §5.3: /set response arguments. */
export interface SetResponse<T = Record<string, unknown>> {
  accountId: Id;
  oldState: string | null;
  newState: string;
  created?: Record<Id, T> | null;
  updated?: Record<Id, Partial<T> | null> | null;
  destroyed?: Id[] | null;
  notCreated?: Record<Id, SetError> | null;
  notUpdated?: Record<Id, SetError> | null;
  notDestroyed?: Record<Id, SetError> | null;
}

/** RFC 8620 §5.2: /changes response arguments. */
export interface ChangesResponse {
  accountId: Id;
  oldState: string;
  newState: string;
  hasMoreChanges: boolean;
  created: Id[];
  updated: Id[];
  destroyed: Id[];
}

/** RFC 8620 §5.1 */
export interface GetResponse<T> {
  accountId: Id;
  state: string;
  list: T[];
  notFound: Id[];
}

/** RFC 8620 §5.5 */
export interface QueryResponse {
  accountId: Id;
  queryState: string;
  canCalculateChanges: boolean;
  position: number;
  ids: Id[];
  total?: number;
}

/** RFC 8620 §7.1: a push StateChange. */
export interface StateChange {
  "@type": "StateChange";
  changed: Record<Id, Record<string, string>>;
}

/** RFC 9610 §3 / RFC 9553: the parts of a ContactCard address completion reads. */
export interface ContactCard {
  id: Id;
  kind?: string;
  name?: { full?: string; components?: { kind: string; value: string }[] } | null;
  emails?: Record<string, { address: string; pref?: number; label?: string }> | null;
}

/** RFC 9670 §2: a Principal of the domain directory. */
export interface Principal {
  id: Id;
  type: string;
  name: string;
  email: string | null;
}
