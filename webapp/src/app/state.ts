/**
 * The application's state (signals) and the glue between the session, the sync engine and
 * the screens. Components read these signals and call these functions; they never talk to
 * JMAP or IndexedDB themselves.
 */

import { signal } from "@preact/signals";

import type { MessageKey } from "../i18n";
import { JmapClient } from "../jmap/client";
import type { GetResponse, Id, Identity, Mailbox } from "../jmap/types";
import { MemoryPeopleCache, PeopleCache, type PeopleStore, type Person, synchronisePeople } from "../mail/people";
import { EMPTY_SELECTION, type Selection } from "../mail/selection";
import { type SignedIn, SessionApi } from "../session";
import type { Action, Draft } from "../sync/actions";
import { type Conflict, DATABASE_PREFIX, MailCache, type MailStore, MemoryMailCache } from "../sync/cache";
import { type Status, SyncEngine } from "../sync/engine";

export const OFFLINE_CHOICE_KEY = "hirondelle.offline";
/** The account of an offline copy, so the app can start without the network. */
const LAST_ACCOUNT_KEY = "hirondelle.account";
const PURGED_KEY = "hirondelle.purged";
/** Senders whose remote images the user allowed (ReadingPane). */
export const TRUSTED_SENDERS_KEY = "hirondelle.remote-images";
const SHELL_CACHE_PREFIX = "hirondelle-";
const RETRY_MS = 30_000;

export interface Notice {
  key: MessageKey;
  params?: Record<string, string | number>;
}

export type Phase = "loading" | "signed-out" | "signed-in";

export const api = new SessionApi();
export const phase = signal<Phase>("loading");
export const session = signal<SignedIn | null>(null);
export const status = signal<Status>("offline");
export const mailboxes = signal<Mailbox[]>([]);
export const currentMailbox = signal<Id | null>(null);
export const currentEmail = signal<Id | null>(null);
export const conflicts = signal<Conflict[]>([]);
export const notices = signal<Notice[]>([]);
/** Bumped whenever the local copy changed: lists and panes re-read. */
export const revision = signal(0);
export const identities = signal<Identity[]>([]);
/** The message being written, with the draft it replaces (null: the composer is closed). */
export const composing = signal<{ draft: Draft; savedDraft: Id | null } | null>(null);
/** The user's contacts and the domain directory, for address completion. */
export const people = signal<Person[]>([]);
/** The messages checked in the list (several-message commands and drag and drop). */
export const selection = signal<Selection>(EMPTY_SELECTION);
/** The search in progress (empty: the current mailbox is listed). */
export const searchText = signal("");
/** Whether this device keeps an offline copy (the user's choice, allowed by the server). */
export const offlineActive = signal(false);

let engine: SyncEngine | null = null;
let peopleStore: PeopleStore | null = null;
let client: JmapClient | null = null;
let stopPush: (() => void) | null = null;
let retryTimer: ReturnType<typeof setInterval> | null = null;

export function currentEngine(): SyncEngine | null {
  return engine;
}

export function currentClient(): JmapClient | null {
  return client;
}

export function offlineChosen(): boolean {
  try {
    return localStorage.getItem(OFFLINE_CHOICE_KEY) === "on";
  } catch {
    return false;
  }
}

/** The per-device choice; it takes effect at once (the page reloads into the other mode). */
export async function chooseOffline(on: boolean): Promise<void> {
  if (on) localStorage.setItem(OFFLINE_CHOICE_KEY, "on");
  else {
    localStorage.removeItem(OFFLINE_CHOICE_KEY);
    await purgeLocalCopies();
  }
  location.reload();
}

export function notify(notice: Notice): void {
  notices.value = [...notices.value, notice];
}

export function dismissNotice(index: number): void {
  notices.value = notices.value.filter((_, i) => i !== index);
}

/** Remove every local trace: IndexedDB copies, the shell cache, the service worker. */
export async function purgeLocalCopies(): Promise<boolean> {
  let found = false;
  if (typeof indexedDB !== "undefined" && "databases" in indexedDB) {
    for (const database of await indexedDB.databases()) {
      if (database.name?.startsWith(DATABASE_PREFIX)) {
        found = true;
        await new Promise<void>((resolve) => {
          const request = indexedDB.deleteDatabase(database.name as string);
          request.onsuccess = request.onerror = request.onblocked = () => resolve();
        });
      }
    }
  }
  if (typeof caches !== "undefined") {
    for (const name of await caches.keys()) {
      if (name.startsWith(SHELL_CACHE_PREFIX)) {
        found = true;
        await caches.delete(name);
      }
    }
  }
  if (typeof navigator !== "undefined" && navigator.serviceWorker) {
    for (const registration of await navigator.serviceWorker.getRegistrations()) {
      registration.active?.postMessage("purge");
      await registration.unregister();
    }
  }
  return found;
}

/** The sending identities (RFC 8621 §6), kept with the copy for composing offline. */
async function loadIdentities(): Promise<void> {
  if (!engine || !client) return;
  try {
    const result = await client.call("Identity/get", { accountId: client.accountId, ids: null });
    identities.value = (result.args as unknown as GetResponse<Identity>).list;
    await engine.cache.setMeta("identities", identities.value);
  } catch {
    identities.value = (await engine.cache.getMeta<Identity[]>("identities")) ?? [];
  }
}

async function refresh(): Promise<void> {
  if (!engine) return;
  mailboxes.value = await engine.cache.mailboxes();
  conflicts.value = await engine.cache.conflicts();
  if (currentMailbox.value === null) {
    currentMailbox.value = mailboxes.value.find((m) => m.role === "inbox")?.id ?? mailboxes.value[0]?.id ?? null;
  }
  revision.value += 1;
}

/** Start the mail screens for a signed-in session. */
export async function begin(signedIn: SignedIn): Promise<void> {
  session.value = signedIn;
  const purgedBefore = sessionStorage.getItem(PURGED_KEY) !== null;
  sessionStorage.removeItem(PURGED_KEY);
  if (!signedIn.webOffline && ((await purgeLocalCopies()) || purgedBefore)) notify({ key: "offline.purged" });
  const durable = signedIn.webOffline && offlineChosen() && typeof indexedDB !== "undefined";
  offlineActive.value = durable;
  client = new JmapClient({ csrfToken: () => session.value?.csrfToken ?? null });
  const cache: MailStore = durable
    ? await MailCache.open(signedIn.account.accountId, indexedDB)
    : new MemoryMailCache();
  // Without offline use the copy only tracks states and the queue: a week of headers, a
  // hundred per folder, bodies fetched when a message is opened.
  engine = new SyncEngine(
    durable ? { client, cache } : { client, cache, windowDays: 7, firstSyncLimit: 100, bodies: false },
  );
  // Contacts and the directory: on disk with the offline copy, in memory otherwise.
  peopleStore = durable
    ? await PeopleCache.open(signedIn.account.accountId, indexedDB).catch(() => new MemoryPeopleCache())
    : new MemoryPeopleCache();
  people.value = await peopleStore.all();
  await engine.restore();
  engine.on((event) => {
    switch (event.type) {
      case "status":
        // The browser knows first that the network is gone: a sync that finished just
        // after does not make the app claim to be online.
        status.value = event.status !== "offline" && navigator.onLine === false ? "offline" : event.status;
        break;
      case "changed":
        void refresh();
        break;
      case "conflict":
        void refresh();
        break;
      case "window-reduced":
        notify({ key: "offline.windowReduced", params: { days: event.days } });
        break;
      case "storage-full":
        notify({ key: "offline.storageFull" });
        break;
      case "arrived":
        announce(event.emails);
        break;
      case "signed-out":
        void end({ serverSession: false });
        break;
    }
  });
  if (durable) localStorage.setItem(LAST_ACCOUNT_KEY, JSON.stringify(signedIn.account));
  if (durable && "serviceWorker" in navigator) {
    void navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => undefined);
  }
  phase.value = "signed-in";
  if (signedIn.csrfToken !== "") status.value = "synchronising";
  await refresh();
  addEventListener("online", cameOnline);
  addEventListener("offline", wentOffline);
  retryTimer = setInterval(() => {
    if (status.value === "offline") synchroniseSoon();
  }, RETRY_MS);
  if (signedIn.csrfToken === "") {
    // Started offline: the session is checked when the connection returns.
    status.value = "offline";
    synchroniseSoon();
    return;
  }
  await engine.synchronise().catch(() => undefined);
  await refresh();
  // After the first synchronisation (which opens the JMAP session and so knows the
  // account): the copy composes offline once it holds them.
  await loadIdentities();
  startPush();
  await refreshPeople();
}

/** Follow the changes of contacts and directory (a failure leaves the copy as it was). */
async function refreshPeople(): Promise<void> {
  const store = peopleStore;
  if (!store || !client) return;
  try {
    if (await synchronisePeople(client, store)) people.value = await store.all();
  } catch {
    // Offline or refused: completion goes on from the copy.
  }
}

function startPush(): void {
  if (!client || client.session === null) return;
  stopPush?.();
  stopPush = client.push({
    onChange: () => synchroniseSoon(),
    onOpen: () => synchroniseSoon(),
  });
}

/**
 * Ask the session API again (the connection came back, or the app started offline): the
 * cookie may have expired, and the administrator may have forbidden offline use since.
 */
async function checkSession(): Promise<boolean> {
  let current: SignedIn | null;
  try {
    current = await api.current();
  } catch {
    return false;
  }
  if (current === null) {
    await end({ serverSession: false });
    return false;
  }
  session.value = current;
  if (!current.webOffline && offlineActive.value) {
    await engine?.purge();
    await purgeLocalCopies();
    localStorage.removeItem(LAST_ACCOUNT_KEY);
    // Tell the reloaded page why the copy went (a flag, no data).
    sessionStorage.setItem(PURGED_KEY, "1");
    location.reload();
    return false;
  }
  return true;
}

/** Delays after the browser says "online" at which a copy still offline tries again. */
const ONLINE_RETRY_MS = [1_000, 3_000, 7_000];
let onlineRetries: ReturnType<typeof setTimeout>[] = [];

/**
 * The browser says the network is back: synchronise now, and again shortly if that
 * first attempt did not get through (the event can come a moment before requests do),
 * rather than waiting for the next periodic retry.
 */
function cameOnline(): void {
  for (const timer of onlineRetries) clearTimeout(timer);
  onlineRetries = ONLINE_RETRY_MS.map((delay) =>
    setTimeout(() => {
      if (status.value === "offline") synchroniseSoon();
    }, delay),
  );
  synchroniseSoon();
}

function synchroniseSoon(): void {
  const running = engine;
  if (!running) return;
  void (async () => {
    if (status.value === "offline" && !(await checkSession())) return;
    await running.synchronise();
    if (identities.value.length === 0) await loadIdentities();
    if (stopPush === null) startPush();
    await refreshPeople();
  })().catch(() => undefined);
}

function wentOffline(): void {
  status.value = "offline";
}

export async function act(action: Action): Promise<void> {
  await engine?.act(action);
}

/** Several actions (a command on the selected messages), queued together. */
export async function actAll(actions: Action[]): Promise<void> {
  await engine?.actAll(actions);
}

/**
 * Whether new messages start in rich text: the composer's switch, remembered on this
 * device. A preference, no data: it stays after sign-out, like the language.
 */
export const RICH_TEXT_KEY = "hirondelle.rich-text";

export function richTextPreferred(): boolean {
  try {
    return localStorage.getItem(RICH_TEXT_KEY) === "on";
  } catch {
    return false;
  }
}

export function preferRichText(on: boolean): void {
  try {
    localStorage.setItem(RICH_TEXT_KEY, on ? "on" : "off");
  } catch {
    // Private mode without storage: the switch holds for this message only.
  }
}

export const NOTIFY_KEY = "hirondelle.notify";

export function notificationsWanted(): boolean {
  return typeof Notification !== "undefined" && Notification.permission === "granted" && localStorage.getItem(NOTIFY_KEY) === "on";
}

/** Ask the browser (it must come from a click) and remember the choice on this device. */
export async function chooseNotifications(on: boolean): Promise<boolean> {
  if (!on || typeof Notification === "undefined") {
    localStorage.removeItem(NOTIFY_KEY);
    return false;
  }
  const permission = Notification.permission === "default" ? await Notification.requestPermission() : Notification.permission;
  if (permission !== "granted") return false;
  localStorage.setItem(NOTIFY_KEY, "on");
  return true;
}

/** New mail while the tab is in the background: one notification per message, at most three. */
function announce(emails: { id: Id; subject: string | null; from: { name: string | null; email: string }[] | null }[]): void {
  if (!notificationsWanted() || document.visibilityState === "visible") return;
  for (const email of emails.slice(0, 3)) {
    const sender = email.from?.[0];
    const notification = new Notification(sender ? sender.name || sender.email : "Hirondelle", {
      body: email.subject ?? "",
      tag: email.id,
    });
    notification.onclick = () => {
      window.focus();
      currentEmail.value = email.id;
    };
  }
}

/** Sign out: end the server session, then wipe everything stored here. */
export async function end({ serverSession = true }: { serverSession?: boolean } = {}): Promise<void> {
  const token = session.value?.csrfToken;
  if (serverSession && token) await api.signOut(token);
  stopPush?.();
  stopPush = null;
  if (retryTimer !== null) clearInterval(retryTimer);
  removeEventListener("online", cameOnline);
  removeEventListener("offline", wentOffline);
  for (const timer of onlineRetries) clearTimeout(timer);
  onlineRetries = [];
  await engine?.purge();
  engine = null;
  client = null;
  peopleStore?.close();
  peopleStore = null;
  people.value = [];
  await purgeLocalCopies();
  try {
    localStorage.removeItem(OFFLINE_CHOICE_KEY);
    localStorage.removeItem(LAST_ACCOUNT_KEY);
    localStorage.removeItem(NOTIFY_KEY);
    localStorage.removeItem(TRUSTED_SENDERS_KEY);
  } catch {
    // Nothing stored.
  }
  session.value = null;
  mailboxes.value = [];
  currentMailbox.value = null;
  currentEmail.value = null;
  conflicts.value = [];
  identities.value = [];
  composing.value = null;
  selection.value = EMPTY_SELECTION;
  searchText.value = "";
  phase.value = "signed-out";
}

export async function dismissConflict(conflict: Conflict): Promise<void> {
  if (engine && conflict.id !== undefined) await engine.cache.dismissConflict(conflict.id);
  await refresh();
}

/** On load: resume the session if the cookie is still good. */
export async function resume(): Promise<void> {
  let current: SignedIn | null;
  try {
    current = await api.current();
  } catch {
    // No network: start from the offline copy if this device keeps one. The CSRF token
    // comes back with the connection (checkSession).
    const stored = offlineChosen() ? localStorage.getItem(LAST_ACCOUNT_KEY) : null;
    if (stored) {
      await begin({ kind: "signed-in", account: JSON.parse(stored), csrfToken: "", webOffline: true });
    } else {
      phase.value = "signed-out";
    }
    return;
  }
  if (current) await begin(current);
  else phase.value = "signed-out";
}
