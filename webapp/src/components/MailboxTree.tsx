import { useEffect, useState } from "preact/hooks";

import { actAll, currentEmail, currentEngine, currentMailbox, mailboxes, revision, selection } from "../app/state";
import { mailboxName, t } from "../i18n";
import type { Id, Mailbox } from "../jmap/types";
import { EMPTY_SELECTION, dropActions } from "../mail/selection";
import { OUTBOX } from "../sync/engine";
import { DRAG_TYPE } from "./MessageList";

const ROLE_ORDER = ["inbox", "drafts", "outbox", "sent", "archive", "junk", "trash"];

export interface TreeItem {
  mailbox: Mailbox;
  depth: number;
}

/** Mailboxes in display order: roles first, then by sortOrder and name; children under parents. */
export function flattenTree(list: Mailbox[]): TreeItem[] {
  const children = new Map<Id | null, Mailbox[]>();
  for (const mailbox of list) {
    const parent = list.some((m) => m.id === mailbox.parentId) ? mailbox.parentId : null;
    children.set(parent, [...(children.get(parent) ?? []), mailbox]);
  }
  const rank = (m: Mailbox) => {
    const index = ROLE_ORDER.indexOf(m.role ?? "");
    return index === -1 ? ROLE_ORDER.length : index;
  };
  const order = (a: Mailbox, b: Mailbox) =>
    rank(a) - rank(b) || a.sortOrder - b.sortOrder || a.name.localeCompare(b.name);
  const result: TreeItem[] = [];
  const walk = (parent: Id | null, depth: number) => {
    for (const mailbox of (children.get(parent) ?? []).sort(order)) {
      result.push({ mailbox, depth });
      walk(mailbox.id, depth + 1);
    }
  };
  walk(null, 0);
  return result;
}

function outboxMailbox(count: number): Mailbox {
  return {
    id: OUTBOX,
    name: "Outbox",
    parentId: null,
    role: "outbox",
    sortOrder: 0,
    totalEmails: count,
    unreadEmails: count,
    totalThreads: count,
    unreadThreads: count,
    isSubscribed: true,
  };
}

/** The mailbox tree with localised role names and unread counts (ARIA tree). */
export function MailboxTree() {
  const [outboxCount, setOutboxCount] = useState(0);
  const [dropTarget, setDropTarget] = useState<Id | null>(null);
  useEffect(() => {
    void currentEngine()?.cache.emailsIn(OUTBOX).then((list) => setOutboxCount(list.length));
  }, [revision.value]);
  const list = outboxCount > 0 ? [...mailboxes.value, outboxMailbox(outboxCount)] : mailboxes.value;
  const items = flattenTree(list);
  const selected = currentMailbox.value;

  function select(id: Id): void {
    currentMailbox.value = id;
    currentEmail.value = null;
  }

  function onKeyDown(event: KeyboardEvent): void {
    const index = items.findIndex((item) => item.mailbox.id === selected);
    let next = index;
    if (event.key === "ArrowDown") next = Math.min(items.length - 1, index + 1);
    else if (event.key === "ArrowUp") next = Math.max(0, index - 1);
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = items.length - 1;
    else return;
    event.preventDefault();
    const item = items[next];
    if (item) {
      select(item.mailbox.id);
      document.getElementById(`mailbox-${item.mailbox.id}`)?.focus();
    }
  }

  return (
    <nav class="mailboxes" aria-label={t("mail.mailboxes")}>
      <ul role="tree" aria-label={t("mail.mailboxes")} onKeyDown={onKeyDown}>
        {items.map(({ mailbox, depth }) => {
          const isSelected = mailbox.id === selected;
          const unread = mailbox.role === "outbox" ? mailbox.totalEmails : mailbox.unreadEmails;
          return (
            <li
              key={mailbox.id}
              id={`mailbox-${mailbox.id}`}
              role="treeitem"
              aria-level={depth + 1}
              aria-selected={isSelected}
              tabIndex={isSelected || (selected === null && depth === 0) ? 0 : -1}
              style={{ paddingInlineStart: `${0.75 + depth}rem` }}
              class={`${isSelected ? "selected" : ""}${dropTarget === mailbox.id ? " drop-target" : ""}`}
              onClick={() => select(mailbox.id)}
              onDragOver={(event) => {
                if (mailbox.role !== "outbox" && event.dataTransfer?.types.includes(DRAG_TYPE)) {
                  event.preventDefault();
                  event.dataTransfer.dropEffect = "move";
                  if (dropTarget !== mailbox.id) setDropTarget(mailbox.id);
                }
              }}
              onDragLeave={() => setDropTarget((current) => (current === mailbox.id ? null : current))}
              onDrop={(event) => {
                setDropTarget(null);
                const data = event.dataTransfer?.getData(DRAG_TYPE);
                if (!data || mailbox.role === "outbox") return;
                event.preventDefault();
                let payload: unknown;
                try {
                  payload = JSON.parse(data);
                } catch {
                  return;
                }
                const actions = dropActions(payload, mailbox.id);
                if (actions.length === 0) return;
                const moved = new Set(actions.map((a) => (a.kind === "move" ? a.emailId : "")));
                if (currentEmail.value !== null && moved.has(currentEmail.value)) currentEmail.value = null;
                selection.value = EMPTY_SELECTION;
                void actAll(actions);
              }}
            >
              <span class="name">{mailboxName(mailbox)}</span>
              {unread > 0 && (
                <span class="count" aria-label={t("mail.unread", { count: unread })}>
                  {unread}
                </span>
              )}
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
