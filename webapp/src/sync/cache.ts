/**
 * The local copy of one account's mail in IndexedDB (through `idb`): mailboxes, the emails
 * of the offline window with their bodies, attachments up to a size, the JMAP states the
 * copy reflects, the durable queue of actions taken offline, and the conflicts to show.
 *
 * One database per account ("hirondelle-<accountId>"), so purging an account is one
 * deleteDatabase. The IDBFactory is injected: the browser's when the user chose "use this
 * computer offline", an in-memory one otherwise (nothing is written to disk on a shared
 * computer), fake-indexeddb's in tests.
 */

import { type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames, wrap } from "idb";

import type { Email, EmailBody, Id, Mailbox } from "../jmap/types";
import type { Action } from "./actions";

export const DATABASE_PREFIX = "hirondelle-";
const VERSION = 1;

/** An email as cached: ``mailboxList`` feeds the per-mailbox index (multiEntry). */
export interface CachedEmail extends Email {
  mailboxList: Id[];
  /** True for a message written here and not yet on the server (the Outbox, new drafts). */
  local?: boolean;
}

export interface QueuedAction {
  seq?: number;
  action: Action;
  queuedAt: number;
  /** Set before the request is sent: on replay an in-flight action may already be done. */
  inFlight: boolean;
}

export interface Conflict {
  id?: number;
  action: Action;
  /** Why the action could not be applied as queued (a stable code the UI translates). */
  reason: "deleted" | "moved-elsewhere" | "draft-changed" | "refused";
  detail: string;
  at: number;
}

interface MailSchema extends DBSchema {
  mailboxes: { key: Id; value: Mailbox };
  emails: { key: Id; value: CachedEmail; indexes: { mailbox: Id; receivedAt: string } };
  bodies: { key: Id; value: EmailBody };
  blobs: { key: Id; value: { blobId: Id; data: Blob } };
  meta: { key: string; value: unknown };
  queue: { key: number; value: QueuedAction };
  conflicts: { key: number; value: Conflict };
}

type Store = StoreNames<MailSchema>;

/** IndexedDB ran out of room (QuotaExceededError), however the browser words it. */
export function isQuotaError(error: unknown): boolean {
  return (
    error instanceof Error &&
    (error.name === "QuotaExceededError" || error.name === "NS_ERROR_DOM_QUOTA_REACHED")
  );
}

function openDatabase(factory: IDBFactory, name: string): Promise<IDBPDatabase<MailSchema>> {
  const request = factory.open(name, VERSION);
  request.addEventListener("upgradeneeded", () => {
    const db = request.result;
    db.createObjectStore("mailboxes", { keyPath: "id" });
    const emails = db.createObjectStore("emails", { keyPath: "id" });
    emails.createIndex("mailbox", "mailboxList", { multiEntry: true });
    emails.createIndex("receivedAt", "receivedAt");
    db.createObjectStore("bodies", { keyPath: "emailId" });
    db.createObjectStore("blobs", { keyPath: "blobId" });
    db.createObjectStore("meta");
    db.createObjectStore("queue", { keyPath: "seq", autoIncrement: true });
    db.createObjectStore("conflicts", { keyPath: "id", autoIncrement: true });
  });
  return wrap(request) as unknown as Promise<IDBPDatabase<MailSchema>>;
}

export function newestFirst(a: Email, b: Email): number {
  return a.receivedAt < b.receivedAt ? 1 : a.receivedAt > b.receivedAt ? -1 : 0;
}

export function searchWords(text: string): string[] {
  return text.toLowerCase().split(/\s+/).filter(Boolean);
}

/** Whether every word is in the subject, the addresses, the preview or the text. */
export function matches(email: Email, body: EmailBody | undefined, words: string[]): boolean {
  const haystack = [
    email.subject ?? "",
    email.preview,
    ...(email.from ?? []).map((a) => `${a.name ?? ""} ${a.email}`),
    ...(email.to ?? []).map((a) => `${a.name ?? ""} ${a.email}`),
    ...Object.values(body?.bodyValues ?? {}).map((v) => v.value),
  ]
    .join("\n")
    .toLowerCase();
  return words.every((word) => haystack.includes(word));
}

export function cached(email: Email, local = false): CachedEmail {
  return { ...email, mailboxList: Object.keys(email.mailboxIds), ...(local ? { local } : {}) };
}

export class MailCache {
  private constructor(
    private readonly db: IDBPDatabase<MailSchema>,
    readonly name: string,
    private readonly factory: IDBFactory,
  ) {}

  static async open(accountId: Id, factory: IDBFactory): Promise<MailCache> {
    const name = `${DATABASE_PREFIX}${accountId}`;
    return new MailCache(await openDatabase(factory, name), name, factory);
  }

  /** Remove the whole local copy, queue and conflicts included (sign-out, admin switch). */
  async destroy(): Promise<void> {
    this.db.close();
    await new Promise<void>((resolve, reject) => {
      const request = this.factory.deleteDatabase(this.name);
      request.onsuccess = () => resolve();
      request.onerror = () => reject(request.error);
      // Another tab holding the database open: the deletion completes when it closes
      // (it listens for versionchange and closes).
      request.onblocked = () => resolve();
    });
  }

  close(): void {
    this.db.close();
  }

  private tx<S extends Store[]>(stores: S): IDBPTransaction<MailSchema, S, "readwrite"> {
    return this.db.transaction(stores, "readwrite");
  }

  // -- meta -----------------------------------------------------------------------------

  async getMeta<T>(key: string): Promise<T | undefined> {
    return (await this.db.get("meta", key)) as T | undefined;
  }

  async setMeta(key: string, value: unknown): Promise<void> {
    await this.db.put("meta", value, key);
  }

  // -- mailboxes ------------------------------------------------------------------------

  async replaceMailboxes(list: Mailbox[], state: string): Promise<void> {
    const tx = this.tx(["mailboxes", "meta"]);
    await tx.objectStore("mailboxes").clear();
    await Promise.all([
      ...list.map((mailbox) => tx.objectStore("mailboxes").put(mailbox)),
      tx.objectStore("meta").put(state, "state:Mailbox"),
    ]);
    await tx.done;
  }

  async mailboxes(): Promise<Mailbox[]> {
    return this.db.getAll("mailboxes");
  }

  // -- emails ---------------------------------------------------------------------------

  /** Store emails (and bodies) and, in the same transaction, the state they reflect. */
  async putEmails(
    emails: CachedEmail[],
    { bodies = [], destroyed = [], state }: { bodies?: EmailBody[]; destroyed?: Id[]; state?: string } = {},
  ): Promise<void> {
    const tx = this.tx(["emails", "bodies", "meta"]);
    const writes: Promise<unknown>[] = [];
    for (const email of emails) writes.push(tx.objectStore("emails").put(email));
    for (const body of bodies) writes.push(tx.objectStore("bodies").put(body));
    for (const id of destroyed) {
      writes.push(tx.objectStore("emails").delete(id), tx.objectStore("bodies").delete(id));
    }
    if (state !== undefined) writes.push(tx.objectStore("meta").put(state, "state:Email"));
    await Promise.all([...writes, tx.done]);
  }

  async getEmail(id: Id): Promise<CachedEmail | undefined> {
    return this.db.get("emails", id);
  }

  async getBody(id: Id): Promise<EmailBody | undefined> {
    return this.db.get("bodies", id);
  }

  async removeEmails(ids: Id[]): Promise<void> {
    await this.putEmails([], { destroyed: ids });
  }

  /** The cached emails of a mailbox, newest first. */
  async emailsIn(mailboxId: Id): Promise<CachedEmail[]> {
    const list = await this.db.getAllFromIndex("emails", "mailbox", mailboxId);
    return list.sort(newestFirst);
  }

  async allEmails(): Promise<CachedEmail[]> {
    return this.db.getAll("emails");
  }

  /** Forget the server's emails (a full reload follows); messages written here stay. */
  async clearEmails(): Promise<void> {
    const tx = this.tx(["emails", "bodies", "blobs", "meta"]);
    let cursor = await tx.objectStore("emails").openCursor();
    while (cursor) {
      if (!cursor.value.local) {
        await tx.objectStore("bodies").delete(cursor.value.id);
        await cursor.delete();
      }
      cursor = await cursor.continue();
    }
    await tx.objectStore("blobs").clear();
    await tx.objectStore("meta").delete("state:Email");
    await tx.done;
  }

  /**
   * Remove emails received before ``cutoff`` or in no kept mailbox, except ``keep``
   * (targets of queued actions, local messages). Returns how many were removed.
   */
  async prune(cutoff: string, keptMailboxes: Set<Id>, keep: Set<Id>): Promise<number> {
    const tx = this.tx(["emails", "bodies"]);
    let removed = 0;
    let cursor = await tx.objectStore("emails").openCursor();
    while (cursor) {
      const email = cursor.value;
      const outside = !email.mailboxList.some((id) => keptMailboxes.has(id));
      if (!keep.has(email.id) && !email.local && (email.receivedAt < cutoff || outside)) {
        await cursor.delete();
        await tx.objectStore("bodies").delete(email.id);
        removed += 1;
      }
      cursor = await cursor.continue();
    }
    await tx.done;
    return removed;
  }

  /** Offline search: every word in the subject, the addresses, the preview or the text. */
  async search(text: string): Promise<CachedEmail[]> {
    const words = searchWords(text);
    if (words.length === 0) return [];
    const found: CachedEmail[] = [];
    const tx = this.db.transaction(["emails", "bodies"]);
    for (const email of await tx.objectStore("emails").getAll()) {
      if (matches(email, await tx.objectStore("bodies").get(email.id), words)) found.push(email);
    }
    return found.sort(newestFirst);
  }

  // -- attachments ----------------------------------------------------------------------

  async putBlob(blobId: Id, data: Blob): Promise<void> {
    await this.db.put("blobs", { blobId, data });
  }

  async getBlob(blobId: Id): Promise<Blob | undefined> {
    return (await this.db.get("blobs", blobId))?.data;
  }

  // -- the action queue -----------------------------------------------------------------

  /** Queue an action and apply its local effect in one transaction: both or neither. */
  async enqueue(action: Action, effect: { put?: CachedEmail[]; remove?: Id[] } = {}): Promise<number> {
    const tx = this.tx(["queue", "emails", "bodies"]);
    const seq = await tx.objectStore("queue").add({ action, queuedAt: Date.now(), inFlight: false });
    for (const email of effect.put ?? []) await tx.objectStore("emails").put(email);
    for (const id of effect.remove ?? []) {
      await tx.objectStore("emails").delete(id);
      await tx.objectStore("bodies").delete(id);
    }
    await tx.done;
    return seq;
  }

  /** The queued actions, oldest first. */
  async queued(): Promise<QueuedAction[]> {
    return this.db.getAll("queue");
  }

  async markInFlight(seq: number): Promise<void> {
    const entry = await this.db.get("queue", seq);
    if (entry) await this.db.put("queue", { ...entry, inFlight: true });
  }

  async dequeue(seq: number): Promise<void> {
    await this.db.delete("queue", seq);
  }

  // -- conflicts ------------------------------------------------------------------------

  /** Move an action from the queue to the conflicts, atomically: it is never dropped. */
  async conflict(seq: number, conflict: Omit<Conflict, "id" | "at">): Promise<Conflict> {
    const tx = this.tx(["queue", "conflicts"]);
    const stored: Conflict = { ...conflict, at: Date.now() };
    const id = await tx.objectStore("conflicts").add(stored);
    await tx.objectStore("queue").delete(seq);
    await tx.done;
    return { ...stored, id };
  }

  async conflicts(): Promise<Conflict[]> {
    return this.db.getAll("conflicts");
  }

  async dismissConflict(id: number): Promise<void> {
    await this.db.delete("conflicts", id);
  }
}

/** What the engine needs of a local copy: the IndexedDB one or the in-memory one. */
export type MailStore = { [K in keyof MailCache]: MailCache[K] };

/**
 * The copy kept in memory only, for a computer where the user did not choose offline use:
 * the same behaviour (the queue survives a dropped connection) but nothing on disk, and
 * nothing left once the tab is closed.
 */
export class MemoryMailCache implements MailStore {
  readonly name = "memory";
  private meta = new Map<string, unknown>();
  private boxes = new Map<Id, Mailbox>();
  private emails = new Map<Id, CachedEmail>();
  private bodies = new Map<Id, EmailBody>();
  private blobs = new Map<Id, Blob>();
  private queue = new Map<number, QueuedAction>();
  private conflictList = new Map<number, Conflict>();
  private sequence = 0;

  async destroy(): Promise<void> {
    for (const map of [this.meta, this.boxes, this.emails, this.bodies, this.blobs, this.queue, this.conflictList]) {
      map.clear();
    }
  }

  close(): void {}

  async getMeta<T>(key: string): Promise<T | undefined> {
    return structuredClone(this.meta.get(key)) as T | undefined;
  }

  async setMeta(key: string, value: unknown): Promise<void> {
    this.meta.set(key, structuredClone(value));
  }

  async replaceMailboxes(list: Mailbox[], state: string): Promise<void> {
    this.boxes = new Map(list.map((m) => [m.id, structuredClone(m)]));
    this.meta.set("state:Mailbox", state);
  }

  async mailboxes(): Promise<Mailbox[]> {
    return [...this.boxes.values()].map((m) => structuredClone(m));
  }

  async putEmails(
    emails: CachedEmail[],
    { bodies = [], destroyed = [], state }: { bodies?: EmailBody[]; destroyed?: Id[]; state?: string } = {},
  ): Promise<void> {
    for (const email of emails) this.emails.set(email.id, structuredClone(email));
    for (const body of bodies) this.bodies.set(body.emailId, structuredClone(body));
    for (const id of destroyed) {
      this.emails.delete(id);
      this.bodies.delete(id);
    }
    if (state !== undefined) this.meta.set("state:Email", state);
  }

  async getEmail(id: Id): Promise<CachedEmail | undefined> {
    const email = this.emails.get(id);
    return email && structuredClone(email);
  }

  async getBody(id: Id): Promise<EmailBody | undefined> {
    const body = this.bodies.get(id);
    return body && structuredClone(body);
  }

  async removeEmails(ids: Id[]): Promise<void> {
    await this.putEmails([], { destroyed: ids });
  }

  async emailsIn(mailboxId: Id): Promise<CachedEmail[]> {
    return [...this.emails.values()].filter((e) => e.mailboxList.includes(mailboxId)).sort(newestFirst);
  }

  async allEmails(): Promise<CachedEmail[]> {
    return [...this.emails.values()];
  }

  async clearEmails(): Promise<void> {
    for (const email of [...this.emails.values()]) {
      if (email.local) continue;
      this.emails.delete(email.id);
      this.bodies.delete(email.id);
    }
    this.blobs.clear();
    this.meta.delete("state:Email");
  }

  async prune(cutoff: string, keptMailboxes: Set<Id>, keep: Set<Id>): Promise<number> {
    let removed = 0;
    for (const email of [...this.emails.values()]) {
      const outside = !email.mailboxList.some((id) => keptMailboxes.has(id));
      if (!keep.has(email.id) && !email.local && (email.receivedAt < cutoff || outside)) {
        this.emails.delete(email.id);
        this.bodies.delete(email.id);
        removed += 1;
      }
    }
    return removed;
  }

  async search(text: string): Promise<CachedEmail[]> {
    const words = searchWords(text);
    if (words.length === 0) return [];
    return [...this.emails.values()].filter((e) => matches(e, this.bodies.get(e.id), words)).sort(newestFirst);
  }

  async putBlob(blobId: Id, data: Blob): Promise<void> {
    this.blobs.set(blobId, data);
  }

  async getBlob(blobId: Id): Promise<Blob | undefined> {
    return this.blobs.get(blobId);
  }

  async enqueue(action: Action, effect: { put?: CachedEmail[]; remove?: Id[] } = {}): Promise<number> {
    const seq = ++this.sequence;
    this.queue.set(seq, { seq, action: structuredClone(action), queuedAt: Date.now(), inFlight: false });
    await this.putEmails(effect.put ?? [], { destroyed: effect.remove ?? [] });
    return seq;
  }

  async queued(): Promise<QueuedAction[]> {
    return [...this.queue.values()].map((q) => structuredClone(q));
  }

  async markInFlight(seq: number): Promise<void> {
    const entry = this.queue.get(seq);
    if (entry) entry.inFlight = true;
  }

  async dequeue(seq: number): Promise<void> {
    this.queue.delete(seq);
  }

  async conflict(seq: number, conflict: Omit<Conflict, "id" | "at">): Promise<Conflict> {
    const stored: Conflict = { ...structuredClone(conflict), at: Date.now(), id: ++this.sequence };
    this.conflictList.set(stored.id as number, stored);
    this.queue.delete(seq);
    return structuredClone(stored);
  }

  async conflicts(): Promise<Conflict[]> {
    return [...this.conflictList.values()].map((c) => structuredClone(c));
  }

  async dismissConflict(id: number): Promise<void> {
    this.conflictList.delete(id);
  }
}
