import { useEffect, useMemo, useRef, useState } from "preact/hooks";

import { actAll, currentClient, currentEmail, currentEngine, currentMailbox, mailboxes, revision, searchText, selection, status } from "../app/state";
import { formatDate, mailboxName, t } from "../i18n";
import type { Email, Id } from "../jmap/types";
import { ListSource } from "../mail/listSource";
import { EMPTY_SELECTION, type SelectionCommand, dragPayload, extend, rangeIndexes, selectionActions, toggle } from "../mail/selection";
import { snippetRuns } from "../mail/snippets";

function Highlighted({ snippet, fallback }: { snippet: string | null | undefined; fallback: string }) {
  if (!snippet) return <>{fallback}</>;
  return <>{snippetRuns(snippet).map((run, i) => (run.marked ? <mark key={i}>{run.text}</mark> : run.text))}</>;
}

/** The drag-and-drop payload type of messages being moved to another mailbox. */
export const DRAG_TYPE = "application/x-hirondelle-emails";

/** Row height in pixels: fixed, so the visible range is arithmetic (virtual scrolling). */
export const ROW_HEIGHT = 72;
const OVERSCAN = 10;

/** The first and last row (exclusive) to render for a scroll position. */
export function visibleRange(scrollTop: number, height: number, total: number): [number, number] {
  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(total, Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN);
  return [first, last];
}

function sender(email: Email): string {
  const from = email.from?.[0];
  return from ? from.name || from.email : "";
}

/**
 * Run a command on messages: the selection, or the open message when nothing is checked.
 * Deleting for good (in Trash) asks first.
 */
export async function runCommand(command: SelectionCommand, emails: Email[], listed: Id | null): Promise<void> {
  const actions = selectionActions(command, emails, { listed, mailboxes: mailboxes.value });
  if (actions.length === 0) return;
  if (actions[0]?.kind === "destroy" && !confirm(t("mail.deleteForever", { count: actions.length }))) return;
  const moved = new Set(actions.flatMap((a) => (a.kind === "move" || a.kind === "destroy" ? [a.emailId] : [])));
  if (currentEmail.value !== null && moved.has(currentEmail.value)) currentEmail.value = null;
  selection.value = EMPTY_SELECTION;
  await actAll(actions);
}

/** The commands on the checked messages (ARIA toolbar above the list). */
function SelectionBar({ listed }: { listed: Id | null }) {
  const chosen = [...selection.value.emails.values()];
  const run = (command: SelectionCommand) => void runCommand(command, chosen, listed);
  const has = (role: string) => mailboxes.value.some((m) => m.role === role);
  return (
    <div class="selection-bar" role="toolbar" aria-label={t("mail.selectionActions")}>
      <span class="count" role="status">{t("mail.selected", { count: chosen.length })}</span>
      <button type="button" onClick={() => run("read")}>{t("mail.markRead")}</button>
      <button type="button" onClick={() => run("unread")}>{t("mail.markUnread")}</button>
      <button type="button" onClick={() => run("flag")}>{t("mail.flag")}</button>
      <button type="button" onClick={() => run("unflag")}>{t("mail.unflag")}</button>
      {has("archive") && <button type="button" onClick={() => run("archive")}>{t("mail.archive")}</button>}
      {has("junk") && <button type="button" onClick={() => run("junk")}>{t("mail.junk")}</button>}
      {has("trash") && <button type="button" onClick={() => run("delete")}>{t("mail.delete")}</button>}
      <select
        aria-label={t("mail.moveTo")}
        value=""
        onChange={(event) => {
          const target = event.currentTarget.value;
          if (target) run({ moveTo: target });
        }}
      >
        <option value="">{t("mail.moveTo")}</option>
        {mailboxes.value
          .filter((m) => m.id !== listed)
          .map((m) => (
            <option key={m.id} value={m.id}>
              {mailboxName(m)}
            </option>
          ))}
      </select>
      <button type="button" class="link" onClick={() => (selection.value = EMPTY_SELECTION)}>
        {t("mail.clearSelection")}
      </button>
    </div>
  );
}

/** The message list of the current mailbox: virtual-scrolled, keyboard-driven (ARIA listbox). */
export function MessageList() {
  const mailboxId = currentMailbox.value;
  const engine = currentEngine();
  const online = status.value !== "offline";
  const search = searchText.value.trim();
  const lastSource = useRef<{ key: string; source: ListSource } | null>(null);
  const source = useMemo(() => {
    if (!engine || !(search || mailboxId)) return null;
    // The same list (only the copy or the connection changed): start from its rows.
    const key = `${mailboxId ?? ""}\u0000${search}`;
    const previous = lastSource.current?.key === key ? lastSource.current.source : null;
    const made = new ListSource(search ? null : mailboxId, currentClient(), engine.cache, online, search, previous);
    lastSource.current = { key, source: made };
    return made;
    // A new source when the mailbox, the search, the connection or the local copy changes.
  }, [mailboxId, search, engine, online, revision.value]);
  const viewport = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [, setLoaded] = useState(0);
  const total = source?.total ?? 0;
  const [first, last] = visibleRange(scrollTop, height, total || 1);
  const chosen = selection.value;
  const listed = search ? null : mailboxId;

  // Another mailbox or another search: what was checked is out of sight, so unchecked.
  useEffect(() => {
    selection.value = EMPTY_SELECTION;
  }, [mailboxId, search]);

  useEffect(() => {
    const element = viewport.current;
    if (!element) return;
    const observer = new ResizeObserver(() => setHeight(element.clientHeight));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  useEffect(() => {
    if (!source) return;
    let live = true;
    void source.ensure(first, Math.max(last, first + 1)).then(
      () => live && setLoaded((n) => n + 1),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [source, first, last]);

  const selectedIndex = (() => {
    for (let i = first; i < last; i++) if (source?.row(i)?.id === currentEmail.value) return i;
    return -1;
  })();

  function focusRow(index: number): void {
    const email = source?.row(index);
    if (!email || !viewport.current) return;
    currentEmail.value = email.id;
    const top = index * ROW_HEIGHT;
    const element = viewport.current;
    if (top < element.scrollTop) element.scrollTop = top;
    else if (top + ROW_HEIGHT > element.scrollTop + element.clientHeight) element.scrollTop = top + ROW_HEIGHT - element.clientHeight;
  }

  /** The loaded rows from ``start`` to ``end``, both included (loading them first). */
  async function rowsBetween(start: number, end: number): Promise<Email[]> {
    if (!source) return [];
    // Rows on screen are loaded already: no round trip before the selection shows.
    let loaded = true;
    for (let i = start; i <= end && loaded; i++) loaded = source.row(i) !== undefined;
    if (!loaded) await source.ensure(start, end + 1);
    const found: Email[] = [];
    for (let i = start; i <= end; i++) {
      const email = source.row(i);
      if (email) found.push(email);
    }
    return found;
  }

  /** Shift+click or Shift+Up/Down: the range from the anchor (or the open message). */
  async function selectRange(index: number, { add }: { add: boolean }): Promise<void> {
    const anchor = selection.value.anchor ?? (selectedIndex === -1 ? index : selectedIndex);
    const [start, end] = rangeIndexes(anchor, index);
    const rows = await rowsBetween(start, end);
    selection.value = extend({ ...selection.value, anchor }, rows, { add });
  }

  /**
   * Ctrl/Cmd+click, Space or a checkbox adds or removes one message. With Ctrl/Cmd the
   * open message joins the first one (as in a file manager); a checkbox takes only its row.
   */
  function toggleRow(email: Email, index: number, { withOpen = true }: { withOpen?: boolean } = {}): void {
    let current = selection.value;
    const open = selectedIndex === -1 ? undefined : source?.row(selectedIndex);
    if (withOpen && current.emails.size === 0 && open && open.id !== email.id) current = toggle(current, open, selectedIndex);
    selection.value = toggle(current, email, index);
  }

  function onRowClick(event: MouseEvent, email: Email | undefined, index: number): void {
    if (!email) return;
    if (event.shiftKey) {
      event.preventDefault();
      void selectRange(index, { add: event.ctrlKey || event.metaKey });
    } else if (event.ctrlKey || event.metaKey) {
      event.preventDefault();
      toggleRow(email, index);
    } else {
      selection.value = { emails: new Map(), anchor: index };
      currentEmail.value = email.id;
    }
  }

  /** The messages a key acts on: the checked ones, else the open one. */
  function targetsOf(email: Email | undefined): Email[] {
    if (chosen.emails.size > 0) return [...chosen.emails.values()];
    return email ? [email] : [];
  }

  function onKeyDown(event: KeyboardEvent): void {
    const index = selectedIndex === -1 ? first : selectedIndex;
    const email = source?.row(index);
    const targets = targetsOf(email);
    switch (event.key) {
      case "ArrowDown":
      case "j": {
        const next = Math.min(total - 1, selectedIndex + 1);
        if (event.shiftKey && email) void selectRange(next, { add: false });
        else selection.value = { ...chosen, anchor: next };
        focusRow(next);
        break;
      }
      case "ArrowUp":
      case "k": {
        const next = Math.max(0, selectedIndex - 1);
        if (event.shiftKey && email) void selectRange(next, { add: false });
        else selection.value = { ...chosen, anchor: next };
        focusRow(next);
        break;
      }
      case "Home":
        focusRow(0);
        break;
      case "End":
        focusRow(total - 1);
        break;
      case " ":
        if (email) toggleRow(email, index);
        break;
      case "Escape":
        if (chosen.emails.size === 0) return;
        selection.value = EMPTY_SELECTION;
        break;
      case "s":
        if (targets.length) void runCommand(targets.every((e) => e.keywords.$flagged) ? "unflag" : "flag", targets, listed);
        break;
      case "u":
        if (targets.length) void runCommand(targets.every((e) => e.keywords.$seen) ? "unread" : "read", targets, listed);
        break;
      case "Delete":
      case "#":
        if (targets.length) void runCommand("delete", targets, listed);
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  const rows = [];
  for (let index = first; index < last && index < total; index++) {
    const email = source?.row(index);
    const open = email !== undefined && email.id === currentEmail.value;
    const checked = email !== undefined && chosen.emails.has(email.id);
    // With messages checked, they are the selection; otherwise the open one is.
    const selected = chosen.emails.size > 0 ? checked : open;
    rows.push(
      <div
        key={email?.id ?? `pending-${index}`}
        role="option"
        id={email ? `message-${email.id}` : undefined}
        aria-selected={selected}
        aria-current={open ? "true" : undefined}
        aria-setsize={total}
        aria-posinset={index + 1}
        class={`row${open ? " selected" : ""}${checked ? " checked" : ""}${email && !email.keywords.$seen ? " unread" : ""}`}
        style={{ top: `${index * ROW_HEIGHT}px`, height: `${ROW_HEIGHT}px` }}
        onClick={(event) => onRowClick(event, email, index)}
        draggable={email !== undefined && !mailboxId?.startsWith("local:")}
        onDragStart={(event) => {
          if (!email || !event.dataTransfer) return;
          const payload = dragPayload(chosen, email, listed);
          event.dataTransfer.setData(DRAG_TYPE, JSON.stringify(payload));
          event.dataTransfer.setData("text/plain", t("mail.dragCount", { count: payload.items.length }));
          event.dataTransfer.effectAllowed = "move";
        }}
      >
        {email ? (
          <>
            {/* A mouse affordance: the listbox's aria-selected already says what is selected. */}
            <input
              type="checkbox"
              class="pick"
              tabIndex={-1}
              aria-hidden="true"
              checked={checked}
              onClick={(event) => {
                event.stopPropagation();
                if (event.shiftKey) void selectRange(index, { add: true });
                else toggleRow(email, index, { withOpen: false });
              }}
            />
            <span class="from">{sender(email)}</span>
            <time class="date" dateTime={email.receivedAt}>{formatDate(email.receivedAt)}</time>
            <span class="subject">
              {email.keywords.$flagged && <span class="flag" aria-label={t("mail.flagged")}>★ </span>}
              {!email.keywords.$seen && <span class="visually-hidden">{t("mail.unreadMark")}: </span>}
              <Highlighted snippet={source?.snippet(email.id)?.subject} fallback={email.subject || t("mail.noSubject")} />
            </span>
            <span class="preview">
              <Highlighted snippet={source?.snippet(email.id)?.preview} fallback={email.preview} />
            </span>
          </>
        ) : (
          <span class="placeholder" aria-hidden="true" />
        )}
      </div>,
    );
  }

  return (
    <section class="list" aria-label={search ? t("search.results") : t("mail.messages")}>
      {chosen.emails.size > 0 && <SelectionBar listed={listed} />}
      <div
        id="message-list"
        ref={viewport}
        class="viewport"
        role="listbox"
        aria-label={t("mail.messages")}
        aria-multiselectable="true"
        aria-activedescendant={currentEmail.value ? `message-${currentEmail.value}` : undefined}
        tabIndex={0}
        onScroll={(event) => setScrollTop(event.currentTarget.scrollTop)}
        onKeyDown={onKeyDown}
      >
        {source && source.total === 0 ? (
          <p class="empty">{t("mail.empty")}</p>
        ) : (
          <div class="spacer" style={{ height: `${total * ROW_HEIGHT}px` }}>
            {rows}
          </div>
        )}
      </div>
    </section>
  );
}
