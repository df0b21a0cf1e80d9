import "fake-indexeddb/auto";

import { IDBFactory } from "fake-indexeddb";
import { describe, expect, it } from "vitest";

import { JmapClient } from "../jmap/client";
import { FakeJmap } from "../sync/testing/fakeJmap";
import {
  MemoryPeopleCache,
  PeopleCache,
  type Person,
  cardPeople,
  formatPerson,
  score,
  suggest,
  synchronisePeople,
} from "./people";

const contact = (name: string, email: string): Person => ({ name, email, source: "contact" });
const colleague = (name: string, email: string): Person => ({ name, email, source: "directory" });

describe("matching and ranking", () => {
  const people = [
    colleague("Jean Dupont", "jean.dupont@example.test"),
    contact("Jeanne Martin", "jeanne@example.org"),
    colleague("Éric Lefèvre", "eric@example.test"),
    contact("Marie Curie", "mcurie@lab.example"),
    colleague("Paul Dujardin", "pdj@example.test"),
  ];

  it("finds by the start of the name, of any name word or of the address, without accents", () => {
    expect(suggest("jean", people).map((p) => p.name)).toEqual(["Jeanne Martin", "Jean Dupont"]);
    expect(suggest("dup", people).map((p) => p.name)).toEqual(["Jean Dupont"]);
    expect(suggest("eric", people).map((p) => p.name)).toEqual(["Éric Lefèvre"]);
    expect(suggest("LEFE", people).map((p) => p.name)).toEqual(["Éric Lefèvre"]);
    expect(suggest("mcu", people).map((p) => p.email)).toEqual(["mcurie@lab.example"]);
    expect(suggest("curie", people).map((p) => p.email)).toEqual(["mcurie@lab.example"]);
  });

  it("needs every typed word to start a word, and finds inside an address from 3 letters", () => {
    expect(suggest("jean dup", people).map((p) => p.name)).toEqual(["Jean Dupont"]);
    expect(suggest("jean martin", people).map((p) => p.name)).toEqual(["Jeanne Martin"]);
    expect(suggest("jean zzz", people)).toEqual([]);
    expect(suggest("urie", people).map((p) => p.name)).toEqual(["Marie Curie"]);
    expect(suggest("ur", people)).toEqual([]);
    expect(suggest("  ", people)).toEqual([]);
  });

  it("ranks the start of the name above a later word, contacts above the directory", () => {
    const ranked = [colleague("Anne Dubois", "anne@x.test"), colleague("Paul Anne", "paul@x.test"), contact("Annie Hall", "annie@y.test")];
    expect(suggest("ann", ranked).map((p) => p.name)).toEqual(["Annie Hall", "Anne Dubois", "Paul Anne"]);
    expect(score("ann", ranked[0] as Person)).toBeGreaterThan(score("ann", ranked[1] as Person));
  });

  it("suggests an address once, the contact's name winning, and skips what is already typed", () => {
    const both = [colleague("J. Dupont (Sales)", "jean@example.test"), contact("Jean", "jean@example.test")];
    expect(suggest("jean", both)).toEqual([contact("Jean", "jean@example.test")]);
    expect(suggest("jean", both, { exclude: ["JEAN@example.test"] })).toEqual([]);
    const many = Array.from({ length: 20 }, (_, i) => colleague(`Agent ${i}`, `agent${i}@x.test`));
    expect(suggest("agent", many, { limit: 5 })).toHaveLength(5);
  });

  it("writes Name <address>, quoting names that need it", () => {
    expect(formatPerson(contact("Jean Dupont", "j@x.test"))).toBe("Jean Dupont <j@x.test>");
    expect(formatPerson(contact("Dupont, Jean", "j@x.test"))).toBe('"Dupont, Jean" <j@x.test>');
    expect(formatPerson(contact("", "j@x.test"))).toBe("j@x.test");
  });

  it("takes one person per address of a card, preferred first, named from its components", () => {
    const people = cardPeople({
      id: "C1",
      name: { components: [{ kind: "given", value: "Jean" }, { kind: "surname", value: "Dupont" }] },
      emails: { a: { address: "home@x.test", pref: 2 }, b: { address: "work@x.test", pref: 1 }, c: { address: "not an address" } },
    });
    expect(people).toEqual([contact("Jean Dupont", "work@x.test"), contact("Jean Dupont", "home@x.test")]);
    expect(cardPeople({ id: "C2", name: { full: "Org" }, emails: null })).toEqual([]);
  });
});

function server(): FakeJmap {
  const fake = new FakeJmap();
  fake.offerPeople();
  fake.putCard({ id: "C1", name: { full: "Jean Dupont" }, emails: { e: { address: "jean@example.org" } } });
  fake.putPrincipal({ id: "P1", type: "individual", name: "Carol Colleague", email: "carol@example.test" });
  return fake;
}

describe("the local copy of contacts and the directory", () => {
  it("loads everything once, then follows /changes in one request per kind", async () => {
    const fake = server();
    const client = new JmapClient({ fetch: fake.fetch });
    const store = await PeopleCache.open("a1", new IDBFactory());
    expect(await synchronisePeople(client, store)).toBe(true);
    expect(suggest("jea", await store.all()).map(formatPerson)).toEqual(["Jean Dupont <jean@example.org>"]);
    expect(suggest("car", await store.all()).map(formatPerson)).toEqual(["Carol Colleague <carol@example.test>"]);

    fake.putCard({ id: "C1", name: { full: "Jean Dupont" }, emails: { e: { address: "jean@new.example" } } });
    fake.putCard({ id: "C2", name: { full: "Zoé Zed" }, emails: { e: { address: "zoe@example.org" } } });
    fake.putPrincipal({ id: "P2", type: "individual", name: "Dan Desk", email: "dan@example.test" });
    const before = fake.requests.length;
    expect(await synchronisePeople(client, store)).toBe(true);
    const calls = fake.requests.slice(before).map((r) => r.methodCalls.map((c) => c[0]));
    expect(calls).toEqual([
      ["ContactCard/changes", "ContactCard/get", "ContactCard/get"],
      ["Principal/changes", "Principal/get", "Principal/get"],
    ]);
    expect(suggest("jean", await store.all()).map((p) => p.email)).toEqual(["jean@new.example"]);
    expect(suggest("zoe", await store.all())).toHaveLength(1);
    expect(suggest("dan", await store.all())).toHaveLength(1);

    fake.removeCard("C2");
    expect(await synchronisePeople(client, store)).toBe(true);
    expect(suggest("zoe", await store.all())).toEqual([]);
    expect(await synchronisePeople(client, store)).toBe(false);
  });

  it("keeps working offline from what it holds, and survives a reopen", async () => {
    const fake = server();
    const factory = new IDBFactory();
    const client = new JmapClient({ fetch: fake.fetch });
    const store = await PeopleCache.open("a1", factory);
    await synchronisePeople(client, store);
    store.close();
    fake.online = false;
    const reopened = await PeopleCache.open("a1", factory);
    await expect(synchronisePeople(client, reopened)).rejects.toThrow();
    expect(suggest("car", await reopened.all())).toHaveLength(1);
    expect(PeopleCache.databaseName("a1")).toBe("hirondelle-a1-people");
  });

  it("reloads everything when the server can no longer calculate the changes", async () => {
    const fake = server();
    const client = new JmapClient({ fetch: fake.fetch });
    const store = new MemoryPeopleCache();
    await synchronisePeople(client, store);
    fake.removeCard("C1");
    fake.putCard({ id: "C3", name: { full: "New Person" }, emails: { e: { address: "new@example.org" } } });
    fake.floor = fake.modseq;
    await synchronisePeople(client, store);
    const emails = (await store.all()).map((p) => p.email).sort();
    expect(emails).toEqual(["carol@example.test", "new@example.org"]);
  });

  it("asks nothing of a server without contacts or principals", async () => {
    const fake = new FakeJmap();
    const client = new JmapClient({ fetch: fake.fetch });
    const store = new MemoryPeopleCache();
    expect(await synchronisePeople(client, store)).toBe(false);
    expect(fake.requests).toEqual([]);
    expect(await store.all()).toEqual([]);
  });
});
