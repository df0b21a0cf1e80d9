/**
 * The sync engine: keeps the local copy current from JMAP changes, queues what the user does,
 * replays the queue in order when the connection returns, and reports conflicts. It knows
 * nothing of the UI; the UI subscribes to its events.
 *
 * RFC 8620 §5.2 (/changes, cannotCalculateChanges), §5.3 (/set with ifInState and
 * stateMismatch), §3.7 (result references); RFC 8621 §4 (Email), §7 (EmailSubmission).
 *
 * Replay and conflicts. Each queued action is replayed as one request: an Email/get of the
 * emails it names, then (in a second request) the Email/set with ``ifInState`` set to the
 * state that Email/get returned. What the get shows decides: a message deleted meanwhile, a
 * message moved away from the folder the user moved it from, a draft replaced elsewhere is
 * a conflict, stored with the action for the user to see; a changed state between the two
 * requests (stateMismatch) means "look again", up to three times. An action whose request
 * may have reached the server before the connection dropped ("in flight") is checked first
 * (by its Message-ID for sends and drafts), so a replay never sends a message twice.
 */

import { MethodError, NetworkError, type JmapClient } from "../jmap/client";
import {
  BODY_PROPERTIES,
  EMAIL_PROPERTIES,
  type ChangesResponse,
  type Email,
  type EmailBody,
  type EmailBodyPart,
  type GetResponse,
  type Id,
  type Mailbox,
  type SetResponse,
} from "../jmap/types";
import { type Action, type Draft, emailCreate, targets } from "./actions";
import { type CachedEmail, type Conflict, type MailStore, type QueuedAction, cached, isQuotaError } from "./cache";

export type Status = "online" | "offline" | "synchronising";

export const OUTBOX = "local:outbox";
export const DEFAULT_WINDOW_DAYS = 30;
const DAY_MS = 86_400_000;
/** Emails fetched per mailbox on a first sync; older ones stay on the server. */
export const FIRST_SYNC_LIMIT = 500;
const MISMATCH_RETRIES = 3;

export type EngineEvent =
  | { type: "status"; status: Status }
  | { type: "conflict"; conflict: Conflict }
  | { type: "window-reduced"; days: number }
  | { type: "storage-full" }
  | { type: "changed" }
  /** New unread mail in the Inbox, from a sync after the first (for notifications). */
  | { type: "arrived"; emails: Email[] }
  | { type: "signed-out" };

export interface EngineOptions {
  client: JmapClient;
  cache: MailStore;
  /** Offline window in days (default 30). */
  windowDays?: number;
  /** Mailboxes kept offline besides Inbox, Drafts and Sent. */
  keptMailboxIds?: Id[];
  /** Largest attachment kept offline, in bytes (0: none). */
  attachmentLimit?: number;
  /** Emails per kept mailbox on a first sync (default 500). */
  firstSyncLimit?: number;
  /**
   * Whether the copy keeps bodies (default true). Without offline use it does not: bodies
   * are fetched when a message is opened, and signing in costs the server no more.
   */
  bodies?: boolean;
  now?: () => number;
}

const KEPT_ROLES = new Set(["inbox", "drafts", "sent"]);

export class SyncEngine {
  readonly client: JmapClient;
  readonly cache: MailStore;
  status: Status = "offline";
  windowDays: number;
  keptMailboxIds: Set<Id>;
  attachmentLimit: number;
  private readonly firstSyncLimit: number;
  private readonly bodies: boolean;
  private readonly now: () => number;
  private readonly listeners = new Set<(event: EngineEvent) => void>();
  private replaying: Promise<void> | null = null;
  /** The end of the last exclusive operation (a sync, a change of window): one at a time. */
  private lock: Promise<unknown> = Promise.resolve();
  /** A sync asked for while another runs: one more after it, shared by every caller. */
  private nextSync: Promise<void> | null = null;

  constructor(options: EngineOptions) {
    this.client = options.client;
    this.cache = options.cache;
    this.windowDays = options.windowDays ?? DEFAULT_WINDOW_DAYS;
    this.keptMailboxIds = new Set(options.keptMailboxIds ?? []);
    this.attachmentLimit = options.attachmentLimit ?? 0;
    this.firstSyncLimit = options.firstSyncLimit ?? FIRST_SYNC_LIMIT;
    this.bodies = options.bodies ?? true;
    this.now = options.now ?? Date.now;
  }

  on(listener: (event: EngineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: EngineEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private setStatus(status: Status): void {
    if (this.status === status) return;
    this.status = status;
    this.emit({ type: "status", status });
  }

  /** Load the settings kept with the copy (the window may have been reduced before). */
  async restore(): Promise<void> {
    this.windowDays = (await this.cache.getMeta<number>("windowDays")) ?? this.windowDays;
    const kept = await this.cache.getMeta<Id[]>("keptMailboxIds");
    if (kept) this.keptMailboxIds = new Set(kept);
    this.attachmentLimit = (await this.cache.getMeta<number>("attachmentLimit")) ?? this.attachmentLimit;
  }

  /** The largest attachment kept offline, in bytes (0: none); applies from the next sync. */
  async setAttachmentLimit(bytes: number): Promise<void> {
    this.attachmentLimit = Math.max(0, Math.floor(bytes));
    await this.cache.setMeta("attachmentLimit", this.attachmentLimit);
  }

  /**
   * Change what is kept offline. A smaller window or fewer folders only prune; a larger one
   * needs mail the copy never had, so the next sync loads the window again (the queue and
   * unsent messages stay).
   */
  setWindow(days: number, keptMailboxIds: Id[]): Promise<void> {
    // Exclusive with syncs: a pull in flight would otherwise write its state after the
    // copy was cleared, and the next sync would ask for changes instead of the new window.
    // A sync asked for after this call must come after it, not share one queued before.
    this.nextSync = null;
    return this.exclusive(() => this.changeWindow(days, keptMailboxIds));
  }

  /** Run ``operation`` after every sync or window change before it, alone. */
  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.lock.then(operation);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private async changeWindow(days: number, keptMailboxIds: Id[]): Promise<void> {
    const wider =
      Math.floor(days) > this.windowDays || keptMailboxIds.some((id) => !this.keptMailboxIds.has(id));
    this.windowDays = Math.max(1, Math.floor(days));
    this.keptMailboxIds = new Set(keptMailboxIds);
    await this.cache.setMeta("windowDays", this.windowDays);
    await this.cache.setMeta("keptMailboxIds", keptMailboxIds);
    if (wider) await this.cache.clearEmails();
    else await this.prune();
  }

  /**
   * Bring everything in line: replay what was queued, then fetch the server's changes.
   * A network failure leaves the engine "offline" with the queue intact.
   */
  synchronise(): Promise<void> {
    // Two pulls at once could store an older state over a newer one: syncs run one at a
    // time, and the calls made while one runs share the single sync that follows it.
    if (this.nextSync === null) {
      const run: Promise<void> = this.exclusive(() => {
        if (this.nextSync === run) this.nextSync = null;
        return this.synchroniseNow();
      });
      this.nextSync = run;
    }
    return this.nextSync;
  }

  private async synchroniseNow(): Promise<void> {
    this.setStatus("synchronising");
    try {
      if (this.client.session === null) await this.client.connect();
      await this.replay();
      await this.pull();
      this.setStatus("online");
    } catch (error) {
      if (error instanceof NetworkError) {
        this.setStatus("offline");
        return;
      }
      if (error instanceof Error && error.name === "SignedOutError") {
        this.emit({ type: "signed-out" });
        this.setStatus("offline");
        return;
      }
      this.setStatus("online");
      throw error;
    }
  }

  // -- the user's actions ----------------------------------------------------------------

  /** Queue an action durably, show its effect at once, and replay it when online. */
  async act(action: Action): Promise<void> {
    await this.actAll([action]);
  }

  /**
   * Several actions at once (a command on a selection of messages): queued in order, each
   * with its effect, then one "changed" and one replay for all of them.
   */
  async actAll(actions: Action[]): Promise<void> {
    if (actions.length === 0) return;
    for (const action of actions) await this.cache.enqueue(action, await this.localEffect(action));
    this.emit({ type: "changed" });
    if (this.status !== "offline") void this.synchronise().catch(() => undefined);
  }

  private async localEffect(action: Action): Promise<{ put?: CachedEmail[]; remove?: Id[] }> {
    switch (action.kind) {
      case "keyword": {
        const email = await this.cache.getEmail(action.emailId);
        if (!email) return {};
        const keywords = { ...email.keywords };
        if (action.value) keywords[action.keyword] = true;
        else delete keywords[action.keyword];
        return { put: [{ ...email, keywords }] };
      }
      case "move": {
        const email = await this.cache.getEmail(action.emailId);
        if (!email) return {};
        const mailboxIds = { ...email.mailboxIds };
        delete mailboxIds[action.from];
        mailboxIds[action.to] = true;
        return { put: [cached({ ...email, mailboxIds })] };
      }
      case "destroy":
        return { remove: [action.emailId] };
      case "send":
        return { put: [this.localEmail(action.localId, action.draft, OUTBOX)] };
      case "save-draft": {
        const drafts = (await this.roleMailbox("drafts"))?.id ?? OUTBOX;
        return {
          put: [this.localEmail(action.localId, action.draft, drafts)],
          remove: action.replaces ? [action.replaces] : [],
        };
      }
    }
  }

  private localEmail(id: Id, draft: Draft, mailboxId: Id): CachedEmail {
    const email: Email = {
      id,
      blobId: "",
      threadId: id,
      mailboxIds: { [mailboxId]: true },
      keywords: { $seen: true, $draft: true },
      size: draft.textBody.length,
      receivedAt: new Date(this.now()).toISOString(),
      messageId: [draft.messageId],
      inReplyTo: draft.inReplyTo,
      references: draft.references,
      from: draft.from,
      to: draft.to,
      cc: draft.cc,
      bcc: draft.bcc,
      replyTo: null,
      subject: draft.subject,
      sentAt: null,
      hasAttachment: draft.attachments.length > 0,
      preview: draft.textBody.slice(0, 256),
    };
    return cached(email, true);
  }

  // -- replay ----------------------------------------------------------------------------

  /** Replay the queue in order; one replay at a time. */
  replay(): Promise<void> {
    if (this.replaying === null) {
      this.replaying = this.replayAll().finally(() => {
        this.replaying = null;
      });
    }
    return this.replaying;
  }

  private async replayAll(): Promise<void> {
    // Actions queued while this runs are picked up by the next pass.
    for (;;) {
      const queue = await this.cache.queued();
      if (queue.length === 0) return;
      for (const entry of queue) await this.replayOne(entry);
    }
  }

  private async replayOne(entry: QueuedAction): Promise<void> {
    const seq = entry.seq as number;
    for (let attempt = 0; ; attempt++) {
      try {
        const outcome = await this.apply(entry);
        if (outcome === "done") {
          await this.cache.dequeue(seq);
          await this.dropLocal(entry.action);
        } else {
          const conflict = await this.cache.conflict(seq, { action: entry.action, ...outcome });
          await this.dropLocal(entry.action);
          this.emit({ type: "conflict", conflict });
        }
        this.emit({ type: "changed" });
        return;
      } catch (error) {
        if (error instanceof MethodError && error.type === "stateMismatch" && attempt < MISMATCH_RETRIES) {
          continue;
        }
        if (error instanceof MethodError) {
          // Refused for a reason no retry fixes (invalid, over quota...): shown, not lost.
          const conflict = await this.cache.conflict(seq, {
            action: entry.action,
            reason: "refused",
            detail: error.type,
          });
          this.emit({ type: "conflict", conflict });
          return;
        }
        throw error;
      }
    }
  }

  private async dropLocal(action: Action): Promise<void> {
    if (action.kind === "send" || action.kind === "save-draft") await this.cache.removeEmails([action.localId]);
  }

  private async roleMailbox(role: string): Promise<Mailbox | undefined> {
    return (await this.cache.mailboxes()).find((m) => m.role === role);
  }

  /** The state and current form of the emails an action names, as the server has them now. */
  private async look(ids: Id[]): Promise<{ state: string; found: Map<Id, Email> }> {
    const result = await this.client.call("Email/get", {
      accountId: this.client.accountId,
      ids,
      properties: ["id", "mailboxIds", "keywords"],
    });
    const response = result.args as unknown as GetResponse<Email>;
    return { state: response.state, found: new Map(response.list.map((e) => [e.id, e])) };
  }

  private async set(args: Record<string, unknown>): Promise<SetResponse> {
    const result = await this.client.call("Email/set", { accountId: this.client.accountId, ...args });
    return result.args as unknown as SetResponse;
  }

  /** Find a message by the Message-ID chosen here (RFC 8621 §4.4.1 header filter). */
  private async findByMessageId(messageId: string): Promise<Email | undefined> {
    const batch = this.client.batch();
    const query = batch.call("Email/query", {
      accountId: this.client.accountId,
      filter: { header: ["Message-ID", `<${messageId}>`] },
    });
    const get = batch.call("Email/get", {
      accountId: this.client.accountId,
      "#ids": query.ref("/ids"),
      properties: ["id", "mailboxIds", "keywords"],
    });
    await batch.send();
    const list = ((await get.result).args as unknown as GetResponse<Email>).list;
    return list[0];
  }

  private async apply(entry: QueuedAction): Promise<"done" | Omit<Conflict, "id" | "at" | "action">> {
    const action = entry.action;
    if (entry.seq !== undefined) await this.cache.markInFlight(entry.seq);
    switch (action.kind) {
      case "keyword": {
        const { state, found } = await this.look([action.emailId]);
        if (!found.has(action.emailId)) return { reason: "deleted", detail: action.emailId };
        const patch = { [`keywords/${action.keyword}`]: action.value ? true : null };
        return this.updated(await this.set({ ifInState: state, update: { [action.emailId]: patch } }), action.emailId);
      }
      case "move": {
        const { state, found } = await this.look([action.emailId]);
        const email = found.get(action.emailId);
        if (!email) return { reason: "deleted", detail: action.emailId };
        if (email.mailboxIds[action.to] && !email.mailboxIds[action.from]) return "done";
        if (!email.mailboxIds[action.from]) return { reason: "moved-elsewhere", detail: action.emailId };
        const patch = { [`mailboxIds/${action.from}`]: null, [`mailboxIds/${action.to}`]: true };
        return this.updated(await this.set({ ifInState: state, update: { [action.emailId]: patch } }), action.emailId);
      }
      case "destroy": {
        // A discarded draft may be named by the local id of a save replayed just before.
        const emailId = await this.resolveDraft(action.emailId);
        if (emailId === null) return "done";
        const { state, found } = await this.look([emailId]);
        if (!found.has(emailId)) return "done";
        const response = await this.set({ ifInState: state, destroy: [emailId] });
        const refused = response.notDestroyed?.[emailId];
        if (refused && refused.type !== "notFound") return { reason: "refused", detail: refused.type };
        return "done";
      }
      case "save-draft":
        return this.saveDraft(entry, action);
      case "send":
        return this.send(entry, action);
    }
  }

  private updated(response: SetResponse, id: Id): "done" | Omit<Conflict, "id" | "at" | "action"> {
    const refused = response.notUpdated?.[id];
    if (!refused) return "done";
    return refused.type === "notFound" ? { reason: "deleted", detail: id } : { reason: "refused", detail: refused.type };
  }

  /** A draft's server id: local ids of saves already replayed map to what they created. */
  private async resolveDraft(id: Id | null | undefined): Promise<Id | null> {
    if (!id) return null;
    if (!id.startsWith("local:")) return id;
    return (await this.cache.getMeta<Id>(`created:${id}`)) ?? null;
  }

  /**
   * The attachments of a reopened draft are parts of that draft (RFC 8621 §4.1.4: a part's
   * blobId), gone once a later save replaces it. Each save records which part of the new
   * version holds each of them (``blob:<old>``); later saves and the send follow that.
   */
  private async resolveAttachments(draft: Draft): Promise<Draft> {
    if (draft.attachments.length === 0) return draft;
    const resolve = async (blobId: Id): Promise<Id> => {
      let current = blobId;
      for (let hops = 0; hops < 1000; hops++) {
        const next = await this.cache.getMeta<Id>(`blob:${current}`);
        if (!next || next === current) break;
        current = next;
      }
      return current;
    };
    const attachments = [];
    for (const attachment of draft.attachments) attachments.push({ ...attachment, blobId: await resolve(attachment.blobId) });
    return { ...draft, attachments };
  }

  private async attachmentBlobIds(emailId: Id): Promise<(Id | null)[] | null> {
    const result = await this.client.call("Email/get", { accountId: this.client.accountId, ids: [emailId], properties: ["attachments"] });
    const found = (result.args as unknown as GetResponse<{ attachments: EmailBodyPart[] }>).list[0];
    return found ? found.attachments.map((part) => part.blobId) : null;
  }

  private async saveDraft(
    entry: QueuedAction,
    queued: Extract<Action, { kind: "save-draft" }>,
  ): Promise<"done" | Omit<Conflict, "id" | "at" | "action">> {
    const drafts = await this.roleMailbox("drafts");
    if (!drafts) return { reason: "refused", detail: "no Drafts mailbox" };
    const action = { ...queued, draft: await this.resolveAttachments(queued.draft) };
    const replaces = await this.resolveDraft(action.replaces);
    // Attachments that are parts of the version being replaced (a reopened draft's).
    const replacedParts = replaces && action.draft.attachments.length ? new Set(await this.attachmentBlobIds(replaces)) : new Set<Id | null>();
    if (entry.inFlight) {
      const existing = await this.findByMessageId(action.draft.messageId);
      if (existing) {
        await this.cache.setMeta(`created:${action.localId}`, existing.id);
        if (replaces) await this.set({ destroy: [replaces] });
        return "done";
      }
    }
    const ids = replaces ? [replaces] : [];
    const { state, found } = await this.look(ids);
    // A previous version that is a still-unsaved local draft has nothing to replace.
    const previousGone = replaces !== null && !found.has(replaces);
    const response = await this.set({
      ifInState: state,
      create: { draft: emailCreate(action.draft, drafts.id, { $draft: true, $seen: true }) },
      ...(replaces && !previousGone ? { destroy: [replaces] } : {}),
    });
    const refused = response.notCreated?.draft;
    if (refused) return { reason: "refused", detail: refused.type };
    const created = response.created?.draft as { id?: Id } | undefined;
    if (created?.id) {
      await this.cache.setMeta(`created:${action.localId}`, created.id);
      const kept = action.draft.attachments.filter((a) => replacedParts.has(a.blobId));
      if (kept.length) {
        // The new version lists its attachments in the order they were given.
        const parts = await this.attachmentBlobIds(created.id);
        if (parts && parts.length === action.draft.attachments.length) {
          for (const [index, attachment] of action.draft.attachments.entries()) {
            const part = parts[index];
            if (part && replacedParts.has(attachment.blobId)) await this.cache.setMeta(`blob:${attachment.blobId}`, part);
          }
        }
      }
    }
    // The version saved here is kept either way; the user sees that another one won or
    // went away elsewhere and chooses.
    if (previousGone) return { reason: "draft-changed", detail: replaces ?? "" };
    return "done";
  }

  private async send(
    entry: QueuedAction,
    queued: Extract<Action, { kind: "send" }>,
  ): Promise<"done" | Omit<Conflict, "id" | "at" | "action">> {
    const action = { ...queued, draft: await this.resolveAttachments(queued.draft) };
    const drafts = await this.roleMailbox("drafts");
    const sent = await this.roleMailbox("sent");
    if (!drafts) return { reason: "refused", detail: "no Drafts mailbox" };
    const onSuccess: Record<string, unknown> = { "keywords/$draft": null };
    if (sent) {
      onSuccess[`mailboxIds/${drafts.id}`] = null;
      onSuccess[`mailboxIds/${sent.id}`] = true;
    }
    let emailRef = "#message";
    const batch = this.client.batch();
    if (entry.inFlight) {
      const existing = await this.findByMessageId(action.draft.messageId);
      // Already submitted: it left Drafts (or lost $draft) when the submission succeeded.
      if (existing && !existing.keywords.$draft) return "done";
      if (existing) emailRef = existing.id;
    }
    if (emailRef === "#message") {
      batch.call("Email/set", {
        accountId: this.client.accountId,
        create: { message: emailCreate(action.draft, drafts.id, { $draft: true, $seen: true }) },
      });
    }
    const submission = batch.call("EmailSubmission/set", {
      accountId: this.client.accountId,
      create: { submission: { emailId: emailRef, identityId: action.identityId } },
      onSuccessUpdateEmail: { "#submission": onSuccess },
    });
    const draft = await this.resolveDraft(action.replacesDraft);
    if (draft && draft !== emailRef) {
      // The autosaved version is superseded by the message just created, whether or not
      // the submission succeeds: a refused send leaves that message in Drafts, not lost.
      batch.call("Email/set", { accountId: this.client.accountId, destroy: [draft] });
    }
    await batch.send();
    const result = (await submission.result).args as unknown as SetResponse;
    const refused = result.notCreated?.submission;
    if (refused) return { reason: "refused", detail: refused.type };
    return "done";
  }

  // -- pulling the server's changes --------------------------------------------------------

  private cutoff(): string {
    return new Date(this.now() - this.windowDays * DAY_MS).toISOString();
  }

  private async keptIds(): Promise<Set<Id>> {
    const kept = new Set(this.keptMailboxIds);
    for (const mailbox of await this.cache.mailboxes()) if (mailbox.role && KEPT_ROLES.has(mailbox.role)) kept.add(mailbox.id);
    return kept;
  }

  /** Fetch what changed on the server since the copy's states (or everything, the first time). */
  async pull(): Promise<void> {
    await this.pullMailboxes();
    // The mailboxes first: the screen can show the tree and list the Inbox from the server
    // while the copy's emails and bodies are still coming.
    this.emit({ type: "changed" });
    const state = await this.cache.getMeta<string>("state:Email");
    if (state === undefined) await this.firstEmails();
    else await this.emailChanges(state);
    await this.prune();
    this.emit({ type: "changed" });
  }

  private async pullMailboxes(): Promise<void> {
    const state = await this.cache.getMeta<string>("state:Mailbox");
    if (state !== undefined) {
      try {
        const changes = (
          await this.client.call("Mailbox/changes", { accountId: this.client.accountId, sinceState: state })
        ).args as unknown as ChangesResponse;
        if (changes.created.length + changes.updated.length + changes.destroyed.length === 0) return;
      } catch (error) {
        if (!(error instanceof MethodError && error.type === "cannotCalculateChanges")) throw error;
      }
    }
    // Mailboxes are few: on any change, take them all (counts change with every message).
    const all = (await this.client.call("Mailbox/get", { accountId: this.client.accountId, ids: null }))
      .args as unknown as GetResponse<Mailbox>;
    await this.cache.replaceMailboxes(all.list, all.state);
  }

  private async firstEmails(): Promise<void> {
    const kept = await this.keptIds();
    const batch = this.client.batch();
    const gets = [...kept].map((mailboxId) => {
      const query = batch.call("Email/query", {
        accountId: this.client.accountId,
        filter: { inMailbox: mailboxId, after: this.cutoff() },
        sort: [{ property: "receivedAt", isAscending: false }],
        limit: this.firstSyncLimit,
      });
      return batch.call("Email/get", {
        accountId: this.client.accountId,
        "#ids": query.ref("/ids"),
        ...this.bodyArguments(),
      });
    });
    if (gets.length === 0) {
      // No mailbox to keep: still record the state, so the next sync asks for changes.
      const empty = batch.call("Email/get", { accountId: this.client.accountId, ids: [] });
      await batch.send();
      await this.store([], [], [], ((await empty.result).args as unknown as GetResponse<Email>).state);
      return;
    }
    await batch.send();
    const emails = new Map<Id, Email & Partial<EmailBody>>();
    let state = "";
    for (const get of gets) {
      const response = (await get.result).args as unknown as GetResponse<Email & Partial<EmailBody>>;
      state = response.state;
      for (const email of response.list) emails.set(email.id, email);
    }
    await this.storeFetched([...emails.values()], [], state);
  }

  private async emailChanges(since: string): Promise<void> {
    let state = since;
    for (;;) {
      const batch = this.client.batch();
      const changesCall = batch.call("Email/changes", { accountId: this.client.accountId, sinceState: state });
      const created = batch.call("Email/get", {
        accountId: this.client.accountId,
        "#ids": changesCall.ref("/created"),
        ...this.bodyArguments(),
      });
      const updated = batch.call("Email/get", {
        accountId: this.client.accountId,
        "#ids": changesCall.ref("/updated"),
        properties: [...EMAIL_PROPERTIES],
      });
      let changes: ChangesResponse;
      try {
        await batch.send();
        changes = (await changesCall.result).args as unknown as ChangesResponse;
      } catch (error) {
        if (error instanceof MethodError && error.type === "cannotCalculateChanges") {
          // Too old for the server's journal: start again from a clean copy (the queue stays).
          await this.cache.clearEmails();
          await this.firstEmails();
          return;
        }
        throw error;
      }
      const fresh = ((await created.result).args as unknown as GetResponse<Email & Partial<EmailBody>>).list;
      const changed = ((await updated.result).args as unknown as GetResponse<Email>).list;
      const keep: (Email & Partial<EmailBody>)[] = [...fresh];
      for (const email of changed) {
        const known = await this.cache.getEmail(email.id);
        if (known) keep.push(email);
        else keep.push(...(await this.fetchBodies([email])));
      }
      await this.storeFetched(keep, changes.destroyed, changes.newState);
      const inbox = (await this.roleMailbox("inbox"))?.id;
      const arrived = fresh.filter((e) => inbox !== undefined && e.mailboxIds[inbox] && !e.keywords.$seen);
      if (arrived.length > 0) this.emit({ type: "arrived", emails: arrived });
      state = changes.newState;
      if (!changes.hasMoreChanges) return;
    }
  }

  /** Email/get arguments for emails the copy keeps: with their bodies when it keeps those. */
  private bodyArguments(): Record<string, unknown> {
    return this.bodies
      ? { properties: [...EMAIL_PROPERTIES, ...BODY_PROPERTIES], fetchTextBodyValues: true, fetchHTMLBodyValues: true }
      : { properties: [...EMAIL_PROPERTIES] };
  }

  /** Emails that came into a kept mailbox by a change need their bodies too. */
  private async fetchBodies(emails: Email[]): Promise<(Email & Partial<EmailBody>)[]> {
    const kept = await this.keptIds();
    const cutoff = this.cutoff();
    const wanted = emails.filter((e) => e.receivedAt >= cutoff && Object.keys(e.mailboxIds).some((id) => kept.has(id)));
    if (wanted.length === 0) return [];
    const result = await this.client.call("Email/get", {
      accountId: this.client.accountId,
      ids: wanted.map((e) => e.id),
      ...this.bodyArguments(),
    });
    return (result.args as unknown as GetResponse<Email & Partial<EmailBody>>).list;
  }

  private async storeFetched(list: (Email & Partial<EmailBody>)[], destroyed: Id[], state: string): Promise<void> {
    const kept = await this.keptIds();
    const cutoff = this.cutoff();
    const emails: CachedEmail[] = [];
    const bodies: EmailBody[] = [];
    for (const item of list) {
      const { bodyValues, textBody, htmlBody, attachments, ...email } = item;
      const inWindow = email.receivedAt >= cutoff && Object.keys(email.mailboxIds).some((id) => kept.has(id));
      const known = await this.cache.getEmail(email.id);
      if (!inWindow && !known) continue;
      emails.push(cached(email));
      if (bodyValues && textBody && htmlBody && attachments) {
        bodies.push({ emailId: email.id, bodyValues, textBody, htmlBody, attachments });
      }
    }
    await this.store(emails, bodies, destroyed, state);
    await this.keepAttachments(bodies);
  }

  /** Download the attachments of newly kept emails that are within the size the user set. */
  private async keepAttachments(bodies: EmailBody[]): Promise<void> {
    if (this.attachmentLimit <= 0) return;
    for (const body of bodies) {
      for (const part of body.attachments) {
        if (part.blobId === null || part.size > this.attachmentLimit) continue;
        if (await this.cache.getBlob(part.blobId)) continue;
        const data = await this.client.download(part.blobId, part.name ?? "attachment", part.type);
        try {
          await this.cache.putBlob(part.blobId, data);
        } catch (error) {
          if (!isQuotaError(error)) throw error;
          // Bodies matter more than attachments: stop keeping these and say why.
          this.attachmentLimit = 0;
          this.emit({ type: "storage-full" });
          return;
        }
      }
    }
  }

  /**
   * Write to the copy; when the browser's storage is full, halve the window, prune, say so,
   * and try again (never spin on a full disk: the known Zimbra failure).
   */
  private async store(emails: CachedEmail[], bodies: EmailBody[], destroyed: Id[], state: string): Promise<void> {
    for (;;) {
      try {
        await this.cache.putEmails(emails, { bodies, destroyed, state });
        return;
      } catch (error) {
        if (!isQuotaError(error)) throw error;
        if (this.windowDays <= 1) {
          // Nothing left to give up: keep the headers only, and say the storage is full.
          this.emit({ type: "storage-full" });
          if (bodies.length === 0) throw error;
          bodies = [];
          continue;
        }
        this.windowDays = Math.max(1, Math.floor(this.windowDays / 2));
        await this.cache.setMeta("windowDays", this.windowDays);
        await this.prune();
        const cutoff = this.cutoff();
        emails = emails.filter((e) => e.receivedAt >= cutoff);
        const ids = new Set(emails.map((e) => e.id));
        bodies = bodies.filter((b) => ids.has(b.emailId));
        this.emit({ type: "window-reduced", days: this.windowDays });
      }
    }
  }

  /** Drop what fell out of the window, keeping anything a queued action names. */
  async prune(): Promise<number> {
    const keep = new Set<Id>();
    for (const entry of await this.cache.queued()) for (const id of targets(entry.action)) keep.add(id);
    return this.cache.prune(this.cutoff(), await this.keptIds(), keep);
  }

  // -- purge ---------------------------------------------------------------------------------

  /** Wipe the local copy (sign-out, or the administrator forbade offline use). */
  async purge(): Promise<void> {
    await this.cache.destroy();
  }
}
