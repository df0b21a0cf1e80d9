/**
 * Address completion: the people the user can write to — their contacts (RFC 9610
 * ContactCard) and the domain directory (RFC 9670 Principal) — kept in a local copy that
 * works offline and is refreshed with /changes (RFC 8620 §5.2, cannotCalculateChanges
 * reloads), and the matching and ranking of what is typed against them.
 *
 * The copy is an IndexedDB database of its own ("hirondelle-<accountId>-people"), so that
 * sign-out and the administrator's switch remove it with the mail copy (same prefix), and
 * the mail copy's schema stays as it is. Without offline use it lives in memory.
 */

import { type DBSchema, type IDBPDatabase, wrap } from "idb";

import { type JmapClient, MethodError } from "../jmap/client";
import { CONTACTS, type ChangesResponse, type ContactCard, type GetResponse, type Id, PRINCIPALS, type Principal } from "../jmap/types";
import { DATABASE_PREFIX } from "../sync/cache";

/** One address to suggest. */
export interface Person {
  name: string;
  email: string;
  source: "contact" | "directory";
}

/** What the copy keeps per object: the people of one card or one principal. */
interface Entry {
  id: Id;
  people: Person[];
}

export type PeopleKind = "ContactCard" | "Principal";

// -- matching and ranking ------------------------------------------------------------------

/** Lowercase without accents, so "eric" finds « Éric » and "francois" « François ». */
export function fold(text: string): string {
  return text.normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
}

function words(text: string): string[] {
  return fold(text).split(/[\s,.'’"()<>@_+-]+/).filter(Boolean);
}

/**
 * How well ``person`` matches what was typed (0: not at all). Every typed word must start
 * a word of the name or the address; the whole text at the start of the name or address
 * ranks first, then word starts, then (for a single word of 3+ letters) anywhere in the
 * address. Contacts come before the directory at equal match.
 */
export function score(typed: string, person: Person): number {
  const query = fold(typed.trim());
  if (query === "") return 0;
  const name = fold(person.name);
  const email = fold(person.email);
  let value: number;
  if (name.startsWith(query) || email.startsWith(query)) value = 100;
  else {
    const wanted = words(query);
    const have = [...words(person.name), ...words(person.email)];
    if (wanted.length > 0 && wanted.every((word) => have.some((w) => w.startsWith(word)))) value = 60;
    else if (query.length >= 3 && !query.includes(" ") && email.includes(query)) value = 20;
    else return 0;
  }
  return value + (person.source === "contact" ? 10 : 0);
}

/**
 * The best ``limit`` suggestions for ``typed``: ranked by score, then name; one per
 * address (a contact's entry wins over the directory's, its name being the user's own);
 * leaving out addresses already in the field.
 */
export function suggest(typed: string, people: Iterable<Person>, { limit = 8, exclude = [] as string[] } = {}): Person[] {
  const skip = new Set(exclude.map((address) => address.toLowerCase()));
  const best = new Map<string, { person: Person; score: number }>();
  for (const person of people) {
    const key = person.email.toLowerCase();
    if (skip.has(key)) continue;
    const value = score(typed, person);
    if (value === 0) continue;
    const known = best.get(key);
    if (!known || value > known.score) best.set(key, { person, score: value });
  }
  return [...best.values()]
    .sort((a, b) => b.score - a.score || a.person.name.localeCompare(b.person.name) || a.person.email.localeCompare(b.person.email))
    .slice(0, limit)
    .map((entry) => entry.person);
}

/** "Name <address>" as it goes into an address field (quoted when the name needs it). */
export function formatPerson(person: Person): string {
  if (!person.name) return person.email;
  const name = /[",;<>@]/.test(person.name) ? `"${person.name.replace(/["\\]/g, "")}"` : person.name;
  return `${name} <${person.email}>`;
}

/** The people of a contact card: one per email address, named by the card. */
export function cardPeople(card: ContactCard): Person[] {
  const name =
    card.name?.full?.trim() ||
    (card.name?.components ?? [])
      .filter((c) => c.kind !== "separator")
      .map((c) => c.value)
      .join(" ")
      .trim();
  const emails = Object.values(card.emails ?? {}).sort((a, b) => (a.pref ?? 100) - (b.pref ?? 100));
  return emails.filter((e) => e.address.includes("@")).map((e) => ({ name, email: e.address, source: "contact" }));
}

export function principalPeople(principal: Principal): Person[] {
  if (!principal.email) return [];
  return [{ name: principal.name, email: principal.email, source: "directory" }];
}

// -- the local copy ----------------------------------------------------------------------------

interface PeopleSchema extends DBSchema {
  ContactCard: { key: Id; value: Entry };
  Principal: { key: Id; value: Entry };
  meta: { key: string; value: string };
}

/** What the sync needs of the copy: the IndexedDB one or the in-memory one. */
export interface PeopleStore {
  state(kind: PeopleKind): Promise<string | undefined>;
  /** Apply fetched entries and removals with the state they bring, in one transaction. */
  apply(kind: PeopleKind, put: Entry[], removed: Id[], state: string, { replace }: { replace: boolean }): Promise<void>;
  all(): Promise<Person[]>;
  close(): void;
}

export class PeopleCache implements PeopleStore {
  private constructor(private readonly db: IDBPDatabase<PeopleSchema>) {}

  static databaseName(accountId: Id): string {
    return `${DATABASE_PREFIX}${accountId}-people`;
  }

  static async open(accountId: Id, factory: IDBFactory): Promise<PeopleCache> {
    const request = factory.open(PeopleCache.databaseName(accountId), 1);
    request.addEventListener("upgradeneeded", () => {
      const db = request.result;
      db.createObjectStore("ContactCard", { keyPath: "id" });
      db.createObjectStore("Principal", { keyPath: "id" });
      db.createObjectStore("meta");
    });
    const db = (await wrap(request)) as unknown as IDBPDatabase<PeopleSchema>;
    // Another tab deleting the database (sign-out): let it.
    db.addEventListener("versionchange", () => db.close());
    return new PeopleCache(db);
  }

  async state(kind: PeopleKind): Promise<string | undefined> {
    return this.db.get("meta", `state:${kind}`);
  }

  async apply(kind: PeopleKind, put: Entry[], removed: Id[], state: string, { replace }: { replace: boolean }): Promise<void> {
    const tx = this.db.transaction([kind, "meta"], "readwrite");
    const store = tx.objectStore(kind);
    if (replace) await store.clear();
    for (const entry of put) await store.put(entry);
    for (const id of removed) await store.delete(id);
    await tx.objectStore("meta").put(state, `state:${kind}`);
    await tx.done;
  }

  async all(): Promise<Person[]> {
    const [cards, principals] = await Promise.all([this.db.getAll("ContactCard"), this.db.getAll("Principal")]);
    return [...cards, ...principals].flatMap((entry) => entry.people);
  }

  close(): void {
    this.db.close();
  }
}

export class MemoryPeopleCache implements PeopleStore {
  private readonly entries: Record<PeopleKind, Map<Id, Entry>> = { ContactCard: new Map(), Principal: new Map() };
  private readonly states = new Map<PeopleKind, string>();

  async state(kind: PeopleKind): Promise<string | undefined> {
    return this.states.get(kind);
  }

  async apply(kind: PeopleKind, put: Entry[], removed: Id[], state: string, { replace }: { replace: boolean }): Promise<void> {
    const map = this.entries[kind];
    if (replace) map.clear();
    for (const entry of put) map.set(entry.id, structuredClone(entry));
    for (const id of removed) map.delete(id);
    this.states.set(kind, state);
  }

  async all(): Promise<Person[]> {
    return [...this.entries.ContactCard.values(), ...this.entries.Principal.values()].flatMap((e) => e.people);
  }

  close(): void {}
}

// -- sync ----------------------------------------------------------------------------------

const SOURCES: { kind: PeopleKind; capability: string; properties: string[]; people: (item: never) => Person[] }[] = [
  { kind: "ContactCard", capability: CONTACTS, properties: ["id", "name", "emails", "kind"], people: cardPeople as (item: never) => Person[] },
  { kind: "Principal", capability: PRINCIPALS, properties: ["id", "type", "name", "email"], people: principalPeople as (item: never) => Person[] },
];

/**
 * Bring the copy up to date: for each kind the server offers, /changes from the copy's
 * state with /get of what was created or updated in the same request (looping while
 * hasMoreChanges), or everything with /get when there is no state yet or the server can no
 * longer calculate the changes. Returns whether anything changed.
 */
export async function synchronisePeople(client: JmapClient, store: PeopleStore): Promise<boolean> {
  const session = client.session ?? (await client.connect());
  let changed = false;
  for (const source of SOURCES) {
    if (!(source.capability in session.capabilities)) continue;
    const accountId = session.primaryAccounts[source.capability] ?? client.accountId;
    const entries = (list: { id: Id }[]): Entry[] => list.map((item) => ({ id: item.id, people: source.people(item as never) }));
    let state = await store.state(source.kind);
    if (state !== undefined) {
      try {
        for (;;) {
          const batch = client.batch();
          const changes = batch.call(`${source.kind}/changes`, { accountId, sinceState: state });
          const get = batch.call(`${source.kind}/get`, {
            accountId,
            "#ids": changes.ref("/created"),
            properties: source.properties,
          });
          const updated = batch.call(`${source.kind}/get`, {
            accountId,
            "#ids": changes.ref("/updated"),
            properties: source.properties,
          });
          await batch.send();
          const answer = (await changes.result).args as unknown as ChangesResponse;
          const fresh = [
            ...((await get.result).args as unknown as GetResponse<{ id: Id }>).list,
            ...((await updated.result).args as unknown as GetResponse<{ id: Id }>).list,
          ];
          if (fresh.length + answer.destroyed.length > 0) changed = true;
          await store.apply(source.kind, entries(fresh), answer.destroyed, answer.newState, { replace: false });
          state = answer.newState;
          if (!answer.hasMoreChanges) break;
        }
        continue;
      } catch (error) {
        if (!(error instanceof MethodError && error.type === "cannotCalculateChanges")) throw error;
      }
    }
    const all = (await client.call(`${source.kind}/get`, { accountId, ids: null, properties: source.properties }))
      .args as unknown as GetResponse<{ id: Id }>;
    await store.apply(source.kind, entries(all.list), [], all.state, { replace: true });
    changed = true;
  }
  return changed;
}
