import { useEffect, useMemo, useRef, useState } from "preact/hooks";

import { act, currentClient, currentEmail, currentEngine, currentMailbox, mailboxes, revision, searchText, status } from "../app/state";
import { formatDate, t } from "../i18n";
import type { Email } from "../jmap/types";
import { ListSource } from "../mail/listSource";
import { snippetRuns } from "../mail/snippets";

function Highlighted({ snippet, fallback }: { snippet: string | null | undefined; fallback: string }) {
  if (!snippet) return <>{fallback}</>;
  return <>{snippetRuns(snippet).map((run, i) => (run.marked ? <mark key={i}>{run.text}</mark> : run.text))}</>;
}

/** The drag-and-drop payload type of a message being moved to another mailbox. */
export const DRAG_TYPE = "application/x-hirondelle-email";

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

/** The message list of the current mailbox: virtual-scrolled, keyboard-driven (ARIA listbox). */
export function MessageList() {
  const mailboxId = currentMailbox.value;
  const engine = currentEngine();
  const online = status.value !== "offline";
  const search = searchText.value.trim();
  const source = useMemo(
    () =>
      engine && (search || mailboxId)
        ? new ListSource(search ? null : mailboxId, currentClient(), engine.cache, online, search)
        : null,
    // A new source when the mailbox, the search, the connection or the local copy changes.
    [mailboxId, search, engine, online, revision.value],
  );
  const viewport = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [, setLoaded] = useState(0);
  const total = source?.total ?? 0;
  const [first, last] = visibleRange(scrollTop, height, total || 1);

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

  function onKeyDown(event: KeyboardEvent): void {
    const index = selectedIndex === -1 ? first : selectedIndex;
    const email = source?.row(index);
    const trash = mailboxes.value.find((m) => m.role === "trash");
    switch (event.key) {
      case "ArrowDown":
      case "j":
        focusRow(Math.min(total - 1, selectedIndex + 1));
        break;
      case "ArrowUp":
      case "k":
        focusRow(Math.max(0, selectedIndex - 1));
        break;
      case "Home":
        focusRow(0);
        break;
      case "End":
        focusRow(total - 1);
        break;
      case "s":
        if (email) void act({ kind: "keyword", emailId: email.id, keyword: "$flagged", value: !email.keywords.$flagged });
        break;
      case "u":
        if (email) void act({ kind: "keyword", emailId: email.id, keyword: "$seen", value: !email.keywords.$seen });
        break;
      case "Delete":
      case "#":
        if (email && trash && mailboxId && mailboxId !== trash.id) {
          void act({ kind: "move", emailId: email.id, from: mailboxId, to: trash.id });
        }
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  const rows = [];
  for (let index = first; index < last && index < total; index++) {
    const email = source?.row(index);
    const selected = email !== undefined && email.id === currentEmail.value;
    rows.push(
      <div
        key={email?.id ?? `pending-${index}`}
        role="option"
        id={email ? `message-${email.id}` : undefined}
        aria-selected={selected}
        aria-setsize={total}
        aria-posinset={index + 1}
        class={`row${selected ? " selected" : ""}${email && !email.keywords.$seen ? " unread" : ""}`}
        style={{ top: `${index * ROW_HEIGHT}px`, height: `${ROW_HEIGHT}px` }}
        onClick={() => email && (currentEmail.value = email.id)}
        draggable={email !== undefined && mailboxId !== null && !search}
        onDragStart={(event) => {
          if (!email || !mailboxId || !event.dataTransfer) return;
          event.dataTransfer.setData(DRAG_TYPE, JSON.stringify({ emailId: email.id, from: mailboxId }));
          event.dataTransfer.effectAllowed = "move";
        }}
      >
        {email ? (
          <>
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
      <div
        id="message-list"
        ref={viewport}
        class="viewport"
        role="listbox"
        aria-label={t("mail.messages")}
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
