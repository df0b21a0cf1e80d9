/**
 * Several messages selected in the list, and what the user does with them: the rules of
 * the selection (Ctrl/Cmd+click toggles, Shift+click and Shift+Up/Down take the range from
 * the anchor) and the queued actions a command on the selection becomes (one per message,
 * RFC 8621 §4.6 Email/set on replay). Plain data, no UI, so it has unit tests of its own.
 */

import type { Email, Id, Mailbox } from "../jmap/types";
import type { Action } from "../sync/actions";

/** The messages checked in the list, in the order they were added, and the range anchor. */
export interface Selection {
  emails: ReadonlyMap<Id, Email>;
  /** The row index Shift+click and Shift+Up/Down extend from. */
  anchor: number | null;
}

export const EMPTY_SELECTION: Selection = { emails: new Map(), anchor: null };

/** Ctrl/Cmd+click, Space or the row's checkbox: add or remove one message. */
export function toggle(selection: Selection, email: Email, index: number): Selection {
  const emails = new Map(selection.emails);
  if (emails.has(email.id)) emails.delete(email.id);
  else emails.set(email.id, email);
  return { emails, anchor: index };
}

/** The row indexes from the anchor to ``index``, both included, in list order. */
export function rangeIndexes(anchor: number | null, index: number): [number, number] {
  const from = anchor ?? index;
  return from <= index ? [from, index] : [index, from];
}

/**
 * Shift+click or Shift+Up/Down: the range from the anchor to ``index`` (rows the list
 * has not loaded are skipped by the caller) replaces the selection, plus what was kept
 * with Ctrl/Cmd held. The anchor stays where it was, as in every file manager.
 */
export function extend(
  selection: Selection,
  rows: Email[],
  { add = false }: { add?: boolean } = {},
): Selection {
  const emails = new Map(add ? selection.emails : []);
  for (const email of rows) emails.set(email.id, email);
  return { emails, anchor: selection.anchor };
}

export type SelectionCommand =
  | "flag"
  | "unflag"
  | "read"
  | "unread"
  | "archive"
  | "junk"
  | "delete"
  | { moveTo: Id };

/** The mailbox a selected message is moved out of: the one listed, else (search) its own. */
function sourceMailbox(email: Email, listed: Id | null, target: Id): Id | null {
  if (listed !== null && email.mailboxIds[listed]) return listed;
  return Object.keys(email.mailboxIds).find((id) => id !== target) ?? null;
}

/**
 * The actions a command on the selection queues, one per message, skipping what would
 * change nothing (a message already flagged, already in the target mailbox). Delete moves
 * to Trash, except in Trash itself, where it deletes for good (the caller asks first).
 */
export function selectionActions(
  command: SelectionCommand,
  emails: Iterable<Email>,
  { listed, mailboxes }: { listed: Id | null; mailboxes: Mailbox[] },
): Action[] {
  const list = [...emails];
  const keyword = (name: string, value: boolean): Action[] =>
    list
      .filter((email) => Boolean(email.keywords[name]) !== value)
      .map((email) => ({ kind: "keyword", emailId: email.id, keyword: name, value }));
  const moveTo = (target: Id | undefined): Action[] => {
    if (target === undefined) return [];
    const actions: Action[] = [];
    for (const email of list) {
      const from = sourceMailbox(email, listed, target);
      if (from === null || from === target) continue;
      actions.push({ kind: "move", emailId: email.id, from, to: target });
    }
    return actions;
  };
  const role = (name: string) => mailboxes.find((m) => m.role === name)?.id;
  switch (command) {
    case "flag":
      return keyword("$flagged", true);
    case "unflag":
      return keyword("$flagged", false);
    case "read":
      return keyword("$seen", true);
    case "unread":
      return keyword("$seen", false);
    case "archive":
      return moveTo(role("archive"));
    case "junk":
      return moveTo(role("junk"));
    case "delete": {
      const trash = role("trash");
      if (trash !== undefined && listed === trash) {
        return list.map((email) => ({ kind: "destroy", emailId: email.id }));
      }
      return moveTo(trash);
    }
    default:
      return moveTo(command.moveTo);
  }
}

/** The drag-and-drop payload of messages being moved to another mailbox. */
export interface DraggedEmails {
  items: { emailId: Id; from: Id }[];
}

/** What a drag carries: the whole selection when the dragged row is in it, else that row. */
export function dragPayload(selection: Selection, dragged: Email, listed: Id | null): DraggedEmails {
  const emails = selection.emails.has(dragged.id) ? [...selection.emails.values()] : [dragged];
  const items: DraggedEmails["items"] = [];
  for (const email of emails) {
    const from = listed !== null && email.mailboxIds[listed] ? listed : Object.keys(email.mailboxIds)[0];
    if (from !== undefined) items.push({ emailId: email.id, from });
  }
  return { items };
}

/** A drop onto ``target``: the moves it queues (nothing for what is already there). */
export function dropActions(payload: unknown, target: Id): Action[] {
  if (typeof payload !== "object" || payload === null || !Array.isArray((payload as DraggedEmails).items)) return [];
  const actions: Action[] = [];
  for (const item of (payload as DraggedEmails).items) {
    if (typeof item?.emailId !== "string" || typeof item.from !== "string" || item.from === target) continue;
    actions.push({ kind: "move", emailId: item.emailId, from: item.from, to: target });
  }
  return actions;
}
