/**
 * An in-memory JMAP server for the sync engine's unit tests (never bundled: only tests
 * import it). It follows RFC 8620/8621 where the engine depends on it: state strings that
 * change with every write, /changes from a journal (with a compaction floor that answers
 * cannotCalculateChanges), /set with ifInState (stateMismatch), result references, and
 * EmailSubmission with onSuccessUpdateEmail. The real server is exercised by the
 * end-to-end tests (Playwright); these tests pin down the engine's own logic.
 */

import type { ContactCard, Email, EmailAddress, Id, Invocation, JmapRequest, Mailbox, Principal, Session } from "../../jmap/types";

type Kind = "Email" | "Mailbox" | "ContactCard" | "Principal";

interface JournalRow {
  modseq: number;
  type: Kind;
  id: Id;
  kind: "created" | "updated" | "destroyed";
}

export interface StoredEmail extends Email {
  attachmentsStored?: { blobId: Id; name: string; type: string; content: string }[];
  textBody?: string;
  htmlBody?: string;
  headers?: Record<string, string>;
}

export interface Sent {
  emailId: Id;
  to: string[];
  subject: string | null;
}

class MethodFailure extends Error {
  constructor(
    readonly type: string,
    description = "",
  ) {
    super(description);
  }
}

function pointer(value: unknown, path: string): unknown {
  // RFC 8620 §3.7: a JSON pointer where "*" maps over arrays.
  const parts = path.split("/").slice(1);
  let current: unknown = value;
  for (const [index, part] of parts.entries()) {
    if (part === "*") {
      if (!Array.isArray(current)) throw new MethodFailure("invalidResultReference");
      const rest = `/${parts.slice(index + 1).join("/")}`;
      return current.flatMap((item) => {
        const mapped = pointer(item, rest);
        return Array.isArray(mapped) ? mapped : [mapped];
      });
    }
    if (current === null || typeof current !== "object" || !(part in current)) {
      throw new MethodFailure("invalidResultReference");
    }
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

export class FakeJmap {
  readonly accountId = "a1";
  online = true;
  modseq = 1;
  /** /changes below this modseq answer cannotCalculateChanges (journal compaction). */
  floor = 0;
  readonly mailboxes = new Map<Id, Mailbox>();
  readonly emails = new Map<Id, StoredEmail>();
  readonly cards = new Map<Id, ContactCard>();
  readonly principals = new Map<Id, Principal>();
  readonly journal: JournalRow[] = [];
  readonly sent: Sent[] = [];
  readonly requests: JmapRequest[] = [];
  readonly downloads: Id[] = [];
  csrfSeen: (string | null)[] = [];
  /** Process the next API request, then fail as if the connection dropped before the answer. */
  dropNextResponse = false;
  /** Runs once at the start of the next Email/set (another client's change, in between). */
  beforeNextSet: (() => void) | null = null;
  private nextId = 1;

  readonly session: Session = {
    capabilities: { "urn:ietf:params:jmap:core": {}, "urn:ietf:params:jmap:mail": {} },
    accounts: { a1: { name: "alice@example.test", isPersonal: true, isReadOnly: false, accountCapabilities: {} } },
    primaryAccounts: { "urn:ietf:params:jmap:mail": "a1", "urn:ietf:params:jmap:submission": "a1" },
    username: "alice@example.test",
    apiUrl: "/jmap/api",
    downloadUrl: "/jmap/download/{accountId}/{blobId}/{name}?type={type}",
    uploadUrl: "/jmap/upload/{accountId}",
    eventSourceUrl: "/jmap/eventsource?types={types}&closeafter={closeafter}&ping={ping}",
    state: "s1",
  };

  readonly fetch: typeof fetch = async (input, init) => {
    if (!this.online) throw new TypeError("Failed to fetch");
    const url = String(input);
    this.csrfSeen.push(new Headers(init?.headers).get("X-CSRF-Token"));
    if (url === "/.well-known/jmap") return Response.json(this.session);
    const download = /^\/jmap\/download\/a1\/([^/]+)\//.exec(url);
    if (download) {
      this.downloads.push(decodeURIComponent(download[1] ?? ""));
      for (const email of this.emails.values()) {
        const part = email.attachmentsStored?.find((a) => a.blobId === decodeURIComponent(download[1] ?? ""));
        if (part) return new Response(part.content, { headers: { "Content-Type": part.type } });
      }
      return new Response("not found", { status: 404 });
    }
    if (url === this.session.apiUrl && init?.method === "POST") {
      const request = JSON.parse(String(init.body)) as JmapRequest;
      this.requests.push(request);
      const methodResponses = this.process(request.methodCalls);
      if (this.dropNextResponse) {
        this.dropNextResponse = false;
        throw new TypeError("connection reset");
      }
      return Response.json({ methodResponses, sessionState: "s1" });
    }
    return new Response("not found", { status: 404 });
  };

  id(prefix: string): Id {
    return `${prefix}${this.nextId++}`;
  }

  state(type: Kind): string {
    const last = [...this.journal].reverse().find((row) => row.type === type);
    return String(last?.modseq ?? 0);
  }

  private record(type: Kind, id: Id, kind: JournalRow["kind"]): void {
    this.journal.push({ modseq: ++this.modseq, type, id, kind });
  }

  /** Offer JMAP for Contacts and Principals (RFC 9610, RFC 9670) in the session. */
  offerPeople(): void {
    this.session.capabilities["urn:ietf:params:jmap:contacts"] = {};
    this.session.capabilities["urn:ietf:params:jmap:principals"] = {};
  }

  /** Add or replace a contact card (created or updated in the journal). */
  putCard(card: ContactCard): void {
    const kind = this.cards.has(card.id) ? "updated" : "created";
    this.cards.set(card.id, structuredClone(card));
    this.record("ContactCard", card.id, kind);
  }

  removeCard(id: Id): void {
    this.cards.delete(id);
    this.record("ContactCard", id, "destroyed");
  }

  putPrincipal(principal: Principal): void {
    const kind = this.principals.has(principal.id) ? "updated" : "created";
    this.principals.set(principal.id, structuredClone(principal));
    this.record("Principal", principal.id, kind);
  }

  addMailbox(role: string | null, name: string, parentId: Id | null = null): Mailbox {
    const mailbox: Mailbox = {
      id: this.id("m"),
      name,
      parentId,
      role,
      sortOrder: 0,
      totalEmails: 0,
      unreadEmails: 0,
      totalThreads: 0,
      unreadThreads: 0,
      isSubscribed: true,
    };
    this.mailboxes.set(mailbox.id, mailbox);
    this.record("Mailbox", mailbox.id, "created");
    return mailbox;
  }

  roleId(role: string): Id {
    const found = [...this.mailboxes.values()].find((m) => m.role === role);
    if (!found) throw new Error(`no ${role}`);
    return found.id;
  }

  addEmail(fields: Partial<StoredEmail> & { mailboxIds: Record<Id, true> }): StoredEmail {
    const id = fields.id ?? this.id("e");
    const email: StoredEmail = {
      blobId: `blob-${id}`,
      threadId: `t-${id}`,
      keywords: {},
      size: 1000,
      receivedAt: new Date().toISOString(),
      messageId: [`${id}@example.test`],
      inReplyTo: null,
      references: null,
      from: [{ name: "Bob", email: "bob@example.test" }],
      to: [{ name: null, email: "alice@example.test" }],
      cc: null,
      bcc: null,
      replyTo: null,
      subject: `Message ${id}`,
      sentAt: null,
      hasAttachment: false,
      preview: `preview of ${id}`,
      textBody: `body of ${id}`,
      ...fields,
      id,
    };
    this.emails.set(id, email);
    this.record("Email", id, "created");
    this.recount();
    return email;
  }

  /** A change made by another client (IMAP, another browser). */
  touch(id: Id, change: Partial<StoredEmail>): void {
    const email = this.emails.get(id);
    if (!email) throw new Error(`no ${id}`);
    Object.assign(email, change);
    this.record("Email", id, "updated");
    this.recount();
  }

  destroy(id: Id): void {
    this.emails.delete(id);
    this.record("Email", id, "destroyed");
    this.recount();
  }

  private recount(): void {
    for (const mailbox of this.mailboxes.values()) {
      const inside = [...this.emails.values()].filter((e) => e.mailboxIds[mailbox.id]);
      const unread = inside.filter((e) => !e.keywords.$seen).length;
      if (mailbox.totalEmails !== inside.length || mailbox.unreadEmails !== unread) {
        mailbox.totalEmails = mailbox.totalThreads = inside.length;
        mailbox.unreadEmails = mailbox.unreadThreads = unread;
        this.record("Mailbox", mailbox.id, "updated");
      }
    }
  }

  process(calls: Invocation[]): Invocation[] {
    const responses: Invocation[] = [];
    const created = new Map<Id, Id>();
    for (const [name, rawArgs, callId] of calls) {
      try {
        const args: Record<string, unknown> = {};
        for (const [key, value] of Object.entries(rawArgs)) {
          if (key.startsWith("#")) {
            const ref = value as { resultOf: string; name: string; path: string };
            const source = responses.find((r) => r[2] === ref.resultOf && r[0] === ref.name);
            if (!source) throw new MethodFailure("invalidResultReference");
            args[key.slice(1)] = pointer(source[1], ref.path);
          } else {
            args[key] = value;
          }
        }
        if (args.accountId !== this.accountId) throw new MethodFailure("accountNotFound");
        responses.push(...this.method(name, args, callId, created));
      } catch (error) {
        const type = error instanceof MethodFailure ? error.type : "serverFail";
        responses.push(["error", { type, description: String(error) }, callId]);
      }
    }
    return responses;
  }

  private method(name: string, args: Record<string, unknown>, callId: string, created: Map<Id, Id>): Invocation[] {
    switch (name) {
      case "Mailbox/get":
        return [[name, this.get("Mailbox", this.mailboxes, args), callId]];
      case "Email/get":
        return [[name, this.get("Email", this.emails, args), callId]];
      case "Mailbox/changes":
        return [[name, this.changes("Mailbox", args), callId]];
      case "Email/changes":
        return [[name, this.changes("Email", args), callId]];
      case "ContactCard/get":
        return [[name, this.get("ContactCard", this.cards, args), callId]];
      case "ContactCard/changes":
        return [[name, this.changes("ContactCard", args), callId]];
      case "Principal/get":
        return [[name, this.get("Principal", this.principals, args), callId]];
      case "Principal/changes":
        return [[name, this.changes("Principal", args), callId]];
      case "Email/query":
        return [[name, this.query(args), callId]];
      case "Email/set":
        return [[name, this.setEmails(args, created), callId]];
      case "EmailSubmission/set":
        return this.submit(args, callId, created);
      case "SearchSnippet/get": {
        const filter = (args.filter ?? {}) as { text?: string };
        const needle = (filter.text ?? "").toLowerCase();
        const mark = (text: string) =>
          needle ? text.replace(new RegExp(needle.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "gi"), (m) => `<mark>${m}</mark>`) : text;
        const list = ((args.emailIds ?? []) as Id[]).map((id) => {
          const email = this.emails.get(id);
          return { emailId: id, subject: email ? mark(email.subject ?? "") : null, preview: email ? mark(email.preview) : null };
        });
        return [[name, { accountId: this.accountId, list, notFound: [] }, callId]];
      }
      case "Identity/get":
        return [
          [
            name,
            {
              accountId: this.accountId,
              state: "i1",
              list: [{ id: "i1", name: "Alice", email: "alice@example.test", replyTo: null, bcc: null, textSignature: "", htmlSignature: "", mayDelete: false }],
              notFound: [],
            },
            callId,
          ],
        ];
      default:
        throw new MethodFailure("unknownMethod");
    }
  }

  private get<T extends { id: Id }>(type: Kind, from: Map<Id, T>, args: Record<string, unknown>) {
    const ids = (args.ids as Id[] | null) ?? [...from.keys()];
    const list: Record<string, unknown>[] = [];
    const notFound: Id[] = [];
    for (const id of ids) {
      const item = from.get(id);
      if (!item) {
        notFound.push(id);
        continue;
      }
      const copy: Record<string, unknown> = structuredClone(item) as unknown as Record<string, unknown>;
      if (type === "Email") {
        const email = item as unknown as StoredEmail;
        delete copy.textBody;
        delete copy.htmlBody;
        delete copy.headers;
        delete copy.attachmentsStored;
        const properties = args.properties as string[] | undefined;
        if (properties?.includes("bodyValues")) {
          copy.bodyValues = { "1": { value: email.textBody ?? "", isEncodingProblem: false, isTruncated: false } };
          copy.textBody = [{ partId: "1", blobId: null, size: 10, name: null, type: "text/plain", charset: "utf-8", disposition: null, cid: null }];
          if (email.htmlBody !== undefined) {
            copy.bodyValues = { ...(copy.bodyValues as object), "2": { value: email.htmlBody, isEncodingProblem: false, isTruncated: false } };
            copy.htmlBody = [{ partId: "2", blobId: null, size: 10, name: null, type: "text/html", charset: "utf-8", disposition: null, cid: null }];
          } else {
            copy.htmlBody = copy.textBody;
          }
        }
        if (properties?.includes("bodyValues") || properties?.includes("attachments")) {
          copy.attachments = (email.attachmentsStored ?? []).map((a) => ({
            partId: null,
            blobId: a.blobId,
            size: a.content.length,
            name: a.name,
            type: a.type,
            charset: null,
            disposition: "attachment",
            cid: null,
          }));
        }
      }
      list.push(copy);
    }
    return { accountId: this.accountId, state: this.state(type), list, notFound };
  }

  private changes(type: Kind, args: Record<string, unknown>) {
    const since = Number(args.sinceState);
    if (Number.isNaN(since) || since < this.floor) throw new MethodFailure("cannotCalculateChanges");
    const rows = this.journal.filter((row) => row.type === type && row.modseq > since);
    const kinds = new Map<Id, Set<string>>();
    for (const row of rows) kinds.set(row.id, (kinds.get(row.id) ?? new Set()).add(row.kind));
    const result = { created: [] as Id[], updated: [] as Id[], destroyed: [] as Id[] };
    for (const [id, set] of kinds) {
      if (set.has("destroyed")) {
        if (!set.has("created")) result.destroyed.push(id);
      } else if (set.has("created")) result.created.push(id);
      else result.updated.push(id);
    }
    return { accountId: this.accountId, oldState: String(since), newState: this.state(type), hasMoreChanges: false, ...result };
  }

  private query(args: Record<string, unknown>) {
    const filter = (args.filter ?? {}) as { inMailbox?: Id; after?: string; text?: string; header?: string[] };
    let list = [...this.emails.values()];
    if (filter.inMailbox) list = list.filter((e) => e.mailboxIds[filter.inMailbox as Id]);
    if (filter.after) list = list.filter((e) => e.receivedAt >= (filter.after as string));
    if (filter.text) {
      const needle = filter.text.toLowerCase();
      list = list.filter((e) => `${e.subject} ${e.textBody}`.toLowerCase().includes(needle));
    }
    if (filter.header) {
      const [header, value] = filter.header;
      list = list.filter((e) => header === "Message-ID" && e.messageId?.includes((value ?? "").replace(/[<>]/g, "")));
    }
    list.sort((a, b) => (a.receivedAt < b.receivedAt ? 1 : a.receivedAt > b.receivedAt ? -1 : 0));
    const position = Number(args.position ?? 0);
    const limit = args.limit === undefined ? list.length : Number(args.limit);
    return {
      accountId: this.accountId,
      queryState: this.state("Email"),
      canCalculateChanges: false,
      position,
      ids: list.slice(position, position + limit).map((e) => e.id),
      total: list.length,
    };
  }

  private resolve(id: Id, created: Map<Id, Id>): Id {
    return id.startsWith("#") ? (created.get(id.slice(1)) ?? id) : id;
  }

  private setEmails(args: Record<string, unknown>, created: Map<Id, Id>) {
    const hook = this.beforeNextSet;
    this.beforeNextSet = null;
    hook?.();
    const oldState = this.state("Email");
    if (args.ifInState !== undefined && args.ifInState !== oldState) throw new MethodFailure("stateMismatch");
    const result = {
      accountId: this.accountId,
      oldState,
      newState: oldState,
      created: {} as Record<Id, unknown>,
      updated: {} as Record<Id, null>,
      destroyed: [] as Id[],
      notCreated: {} as Record<Id, unknown>,
      notUpdated: {} as Record<Id, unknown>,
      notDestroyed: {} as Record<Id, unknown>,
    };
    for (const [creationId, raw] of Object.entries((args.create ?? {}) as Record<string, Record<string, unknown>>)) {
      const bodyValues = (raw.bodyValues ?? {}) as Record<string, { value: string }>;
      // Attachments by blobId: a stored email's part ("part:<email>:<n>", as a real server
      // names them) is readable only while that email exists.
      const given = attachmentParts(raw.bodyStructure);
      const sources = given.map((part) => [...this.emails.values()].flatMap((e) => e.attachmentsStored ?? []).find((a) => a.blobId === part.blobId));
      if (given.some((part, index) => part.blobId.startsWith("part:") && !sources[index])) {
        result.notCreated[creationId] = { type: "invalidProperties", properties: ["bodyStructure"] };
        continue;
      }
      const email = this.addEmail({
        mailboxIds: raw.mailboxIds as Record<Id, true>,
        keywords: (raw.keywords ?? {}) as Record<string, true>,
        subject: (raw.subject ?? null) as string | null,
        from: (raw.from ?? null) as EmailAddress[] | null,
        to: (raw.to ?? null) as EmailAddress[] | null,
        messageId: (raw.messageId ?? null) as string[] | null,
        textBody: Object.values(bodyValues)[0]?.value ?? "",
      });
      if (given.length) {
        email.attachmentsStored = given.map((part, index) => ({
          blobId: `part:${email.id}:${index + 2}`,
          name: part.name ?? "",
          type: part.type,
          content: sources[index]?.content ?? "",
        }));
      }
      created.set(creationId, email.id);
      result.created[creationId] = { id: email.id, blobId: email.blobId, threadId: email.threadId, size: email.size };
    }
    for (const [rawId, patch] of Object.entries((args.update ?? {}) as Record<string, Record<string, unknown>>)) {
      const id = this.resolve(rawId, created);
      const email = this.emails.get(id);
      if (!email) {
        result.notUpdated[rawId] = { type: "notFound" };
        continue;
      }
      for (const [path, value] of Object.entries(patch)) {
        const [property, key] = path.split("/");
        if (property === "keywords" || property === "mailboxIds") {
          const target = email[property] as Record<string, true>;
          if (key === undefined) email[property] = value as Record<string, true>;
          else if (value === null) delete target[key];
          else target[key] = true;
        }
      }
      if (Object.keys(email.mailboxIds).length === 0) {
        result.notUpdated[rawId] = { type: "invalidProperties", properties: ["mailboxIds"] };
        continue;
      }
      this.record("Email", id, "updated");
      result.updated[rawId] = null;
    }
    for (const rawId of (args.destroy ?? []) as Id[]) {
      const id = this.resolve(rawId, created);
      if (!this.emails.has(id)) {
        result.notDestroyed[rawId] = { type: "notFound" };
        continue;
      }
      this.destroy(id);
      result.destroyed.push(rawId);
    }
    this.recount();
    result.newState = this.state("Email");
    return result;
  }

  private submit(args: Record<string, unknown>, callId: string, created: Map<Id, Id>): Invocation[] {
    const createdSubmissions: Record<Id, unknown> = {};
    const onSuccess: Record<string, Record<string, unknown>> = {};
    for (const [creationId, raw] of Object.entries((args.create ?? {}) as Record<string, Record<string, unknown>>)) {
      const emailId = this.resolve(String(raw.emailId), created);
      const email = this.emails.get(emailId);
      if (!email) throw new MethodFailure("invalidArguments", "no such email");
      this.sent.push({ emailId, to: (email.to ?? []).map((a) => a.email), subject: email.subject });
      const submissionId = this.id("sub");
      created.set(creationId, submissionId);
      createdSubmissions[creationId] = { id: submissionId };
      const update = (args.onSuccessUpdateEmail as Record<string, Record<string, unknown>> | undefined)?.[`#${creationId}`];
      if (update) onSuccess[emailId] = update;
    }
    const responses: Invocation[] = [
      ["EmailSubmission/set", { accountId: this.accountId, oldState: null, newState: "x", created: createdSubmissions }, callId],
    ];
    if (Object.keys(onSuccess).length > 0) {
      responses.push(["Email/set", this.setEmails({ accountId: this.accountId, update: onSuccess }, created), callId]);
    }
    return responses;
  }
}

/** The parts of a created email's bodyStructure that name a blob (its attachments). */
function attachmentParts(structure: unknown): { blobId: Id; type: string; name: string | null }[] {
  if (typeof structure !== "object" || structure === null) return [];
  const part = structure as { blobId?: Id; type?: string; name?: string; subParts?: unknown[] };
  if (part.subParts) return part.subParts.flatMap(attachmentParts);
  return part.blobId ? [{ blobId: part.blobId, type: part.type ?? "application/octet-stream", name: part.name ?? null }] : [];
}
