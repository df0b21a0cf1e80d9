/**
 * The rows of a message list, fetched by windows: online, JMAP Email/query with position
 * and limit plus Email/get by result reference (RFC 8621 §4.4, RFC 8620 §5.5 and §3.7), so
 * a 100,000-message mailbox costs one small request per screenful; offline (or for the local
 * Outbox), the local copy.
 */

import { type JmapClient, NetworkError } from "../jmap/client";
import { EMAIL_PROPERTIES, type Email, type GetResponse, type Id, type QueryResponse } from "../jmap/types";
import { type MailStore, searchWords } from "../sync/cache";
import { localSnippet } from "./snippets";

export const PAGE = 100;

/** RFC 8621 §5.1: a SearchSnippet (subject and preview with <mark>, HTML-escaped). */
export interface Snippet {
  emailId: Id;
  subject: string | null;
  preview: string | null;
}

export class ListSource {
  total: number | null = null;
  /** Whether ``total`` is this source's own answer (not carried over from the previous). */
  private counted = false;
  private readonly rows = new Map<number, Email>();
  private readonly loading = new Map<number, Promise<void>>();
  private local: Email[] | null = null;
  private readonly snippets = new Map<Id, Snippet>();

  /** ``mailboxId`` null with a ``search`` text: results from every mailbox. */
  constructor(
    private readonly mailboxId: Id | null,
    private readonly client: JmapClient | null,
    private readonly cache: MailStore,
    private readonly online: boolean,
    private readonly search: string = "",
    previous: ListSource | null = null,
  ) {
    // The same list after a change (a flag, a move, a sync): show the previous rows until
    // the new ones arrive, so the list neither blinks nor ignores keys in between.
    if (previous !== null) {
      this.total = previous.total;
      for (const [index, email] of previous.rows) this.rows.set(index, email);
      for (const [id, snippet] of previous.snippets) this.snippets.set(id, snippet);
    }
  }

  /** Forget the rows of a page about to be replaced by fresh ones. */
  private clearPage(position: number): void {
    for (let i = position; i < position + PAGE; i++) this.rows.delete(i);
  }

  row(index: number): Email | undefined {
    return this.rows.get(index);
  }

  snippet(id: Id): Snippet | undefined {
    return this.snippets.get(id);
  }

  private get filter(): Record<string, unknown> {
    return {
      ...(this.mailboxId !== null ? { inMailbox: this.mailboxId } : {}),
      ...(this.search ? { text: this.search } : {}),
    };
  }

  /** Make sure rows [start, end) are loaded; resolves when they are. */
  async ensure(start: number, end: number): Promise<void> {
    const first = Math.floor(Math.max(0, start) / PAGE);
    const last = Math.floor(Math.max(0, end - 1) / PAGE);
    const pages: Promise<void>[] = [];
    for (let page = first; page <= last; page++) {
      if (this.counted && this.total !== null && page * PAGE >= this.total) break;
      let pending = this.loading.get(page);
      if (!pending) {
        pending = this.loadPage(page);
        this.loading.set(page, pending);
        pending.catch(() => this.loading.delete(page));
      }
      pages.push(pending);
    }
    await Promise.all(pages);
  }

  private async loadPage(page: number): Promise<void> {
    if (this.online && this.client !== null && !this.mailboxId?.startsWith("local:")) {
      try {
        await this.loadRemote(page * PAGE, this.client);
        return;
      } catch (error) {
        // The connection dropped before the app noticed: show the local copy meanwhile.
        if (!(error instanceof NetworkError)) throw error;
      }
    }
    await this.loadLocal(page * PAGE);
  }

  private async loadLocal(position: number): Promise<void> {
    if (this.local === null) {
      if (this.search) {
        const words = searchWords(this.search);
        this.local = await this.cache.search(this.search);
        for (const email of this.local) {
          this.snippets.set(email.id, {
            emailId: email.id,
            subject: localSnippet(email.subject ?? "", words),
            preview: localSnippet(email.preview, words),
          });
        }
      } else {
        this.local = this.mailboxId === null ? [] : await this.cache.emailsIn(this.mailboxId);
      }
    }
    this.total = this.local.length;
    this.counted = true;
    this.clearPage(position);
    this.local.slice(position, position + PAGE).forEach((email, i) => this.rows.set(position + i, email));
  }

  private async loadRemote(position: number, client: JmapClient): Promise<void> {
    const batch = client.batch();
    const query = batch.call("Email/query", {
      accountId: client.accountId,
      filter: this.filter,
      sort: [{ property: "receivedAt", isAscending: false }],
      position,
      limit: PAGE,
      calculateTotal: true,
    });
    const get = batch.call("Email/get", {
      accountId: client.accountId,
      "#ids": query.ref("/ids"),
      properties: [...EMAIL_PROPERTIES],
    });
    const snippets = this.search
      ? batch.call("SearchSnippet/get", {
          accountId: client.accountId,
          filter: this.filter,
          "#emailIds": query.ref("/ids"),
        })
      : null;
    await batch.send();
    const result = (await query.result).args as unknown as QueryResponse;
    if (snippets) {
      // Snippets are a nicety: a server without them still lists the results.
      const found = await snippets.result.then((r) => (r.args.list as Snippet[]) ?? [], () => []);
      for (const snippet of found) this.snippets.set(snippet.emailId, snippet);
    }
    const emails = new Map(((await get.result).args as unknown as GetResponse<Email>).list.map((e) => [e.id, e]));
    this.total = result.total ?? Math.max(this.counted ? (this.total ?? 0) : 0, position + result.ids.length);
    this.counted = true;
    this.clearPage(position);
    result.ids.forEach((id, i) => {
      const email = emails.get(id);
      if (email) this.rows.set(result.position + i, email);
    });
  }
}
