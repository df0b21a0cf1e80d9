import { useEffect, useRef, useState } from "preact/hooks";

import { act, composing, currentClient, identities, preferRichText, status } from "../app/state";
import { t } from "../i18n";
import { formatAddresses, parseAddresses } from "../mail/compose";
import { htmlToText, sanitizeComposed, signatureHtml, textToHtml } from "../mail/richText";
import { type Attachment, type Draft, newMessageId } from "../sync/actions";
import { AddressField } from "./AddressField";
import { RichEditor } from "./RichEditor";

const AUTOSAVE_MS = 5_000;

function localId(): string {
  return `local:${crypto.randomUUID()}`;
}

function domainOf(draft: Draft): string {
  return draft.from[0]?.email.split("@")[1] ?? "localhost";
}

/**
 * Writing a message: recipients, subject, text, attachments (JMAP upload), the sending
 * identity; saved as a draft every few seconds while it changes; sent through the queue,
 * so it waits in the Outbox when offline.
 */
type Opened = NonNullable<typeof composing.value>;

/** One number per message opened for writing, so each gets a fresh form. */
const openings = new WeakMap<Opened, number>();
let openingCount = 0;

export function Composer() {
  const open = composing.value;
  if (!open) return null;
  let key = openings.get(open);
  if (key === undefined) {
    key = ++openingCount;
    openings.set(open, key);
  }
  return <ComposerForm key={key} open={open} />;
}

/**
 * The form starts with the draft's values in its first render: filling them in an effect
 * afterwards would overwrite what the user (or a test) typed in between.
 */
function ComposerForm({ open }: { open: Opened }) {
  const draft = open.draft;
  const [to, setTo] = useState(() => formatAddresses(draft.to));
  const [cc, setCc] = useState(() => formatAddresses(draft.cc));
  const [bcc, setBcc] = useState(() => formatAddresses(draft.bcc));
  const [subject, setSubject] = useState(draft.subject);
  const [body, setBody] = useState(draft.textBody);
  // Rich or plain, per message; a draft with an htmlBody is rich. The editor's content is
  // read from the editor itself (``editor``), never copied into state on each keystroke.
  const [rich, setRich] = useState(draft.htmlBody !== null);
  const [richStart, setRichStart] = useState(draft.htmlBody ?? "");
  const [editorKey, setEditorKey] = useState(0);
  const editor = useRef<HTMLDivElement>(null);
  const [attachments, setAttachments] = useState<Attachment[]>(draft.attachments);
  // A reopened draft keeps the identity it was written from (by its address).
  const [identityId, setIdentityId] = useState(
    () => identities.value.find((i) => i.email.toLowerCase() === draft.from[0]?.email.toLowerCase())?.id ?? "",
  );
  const [message, setMessage] = useState<string | null>(null);
  const [uploading, setUploading] = useState(false);
  const dirty = useRef(false);
  const saved = useRef<string | null>(open.savedDraft);
  const first = useRef<HTMLInputElement>(null);
  const bodyInput = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    // A reply has its recipients: start writing above the quote. After this render, once
    // the fields hold their values (setting a value moves the caret to its end).
    const timer = setTimeout(() => {
      const area = bodyInput.current;
      const richArea = editor.current;
      if (draft.to.length > 0 && richArea) {
        richArea.focus();
        const range = document.createRange();
        range.setStart(richArea, 0);
        range.collapse(true);
        document.getSelection()?.removeAllRanges();
        document.getSelection()?.addRange(range);
        richArea.scrollTop = 0;
      } else if (draft.to.length > 0 && area) {
        area.focus();
        area.setSelectionRange(0, 0);
        area.scrollTop = 0;
      } else first.current?.focus();
    }, 0);
    return () => clearTimeout(timer);
  }, []);

  const identity = identities.value.find((i) => i.id === identityId) ?? identities.value[0];

  /** The text and HTML bodies as they will be sent: signed, sanitised, the text generated. */
  function bodies(): { textBody: string; htmlBody: string | null } {
    if (!rich) {
      const signed = identity?.textSignature && !body.includes(identity.textSignature) ? `${body}\n\n-- \n${identity.textSignature}` : body;
      return { textBody: signed, htmlBody: null };
    }
    let html = editor.current?.innerHTML ?? richStart;
    const signature = identity ? signatureHtml(identity) : "";
    if (signature && !html.includes(signature)) html += signature;
    const htmlBody = sanitizeComposed(html);
    return { textBody: htmlToText(htmlBody), htmlBody };
  }

  function build(messageId: string): Draft {
    const from = identity ? [{ name: identity.name || null, email: identity.email }] : open.draft.from;
    return {
      ...open.draft,
      from,
      to: parseAddresses(to),
      cc: parseAddresses(cc),
      bcc: parseAddresses(bcc),
      subject,
      ...bodies(),
      attachments,
      messageId,
    };
  }

  /** The rich/plain switch: converts what is written, and is remembered for new messages. */
  function switchRich(on: boolean): void {
    if (on === rich) return;
    if (on) {
      setRichStart(textToHtml(body));
      setEditorKey((n) => n + 1);
    } else {
      setBody(htmlToText(editor.current?.innerHTML ?? richStart));
    }
    setRich(on);
    preferRichText(on);
    changed();
  }

  async function saveDraft(): Promise<void> {
    if (!dirty.current) return;
    const draft = build(newMessageId(domainOf(open.draft)));
    const id = localId();
    dirty.current = false;
    await act({ kind: "save-draft", localId: id, draft, replaces: saved.current });
    saved.current = id;
    setMessage(t("compose.saved"));
  }

  useEffect(() => {
    const timer = setInterval(() => void saveDraft(), AUTOSAVE_MS);
    return () => clearInterval(timer);
  });

  const changed = () => {
    dirty.current = true;
  };

  async function send(): Promise<void> {
    const draft = build(open.draft.messageId);
    if (draft.to.length + draft.cc.length + draft.bcc.length === 0) {
      setMessage(t("compose.noRecipient"));
      return;
    }
    if (!identity) {
      setMessage(t("compose.noIdentity"));
      return;
    }
    await act({ kind: "send", localId: localId(), draft, identityId: identity.id, replacesDraft: saved.current });
    composing.value = null;
  }

  async function close(): Promise<void> {
    await saveDraft();
    composing.value = null;
  }

  async function discard(): Promise<void> {
    if (saved.current) await act({ kind: "destroy", emailId: saved.current });
    composing.value = null;
  }

  async function attach(files: FileList | null): Promise<void> {
    const client = currentClient();
    if (!files || files.length === 0) return;
    if (!client || status.value === "offline") {
      setMessage(t("compose.attachOffline"));
      return;
    }
    setUploading(true);
    try {
      for (const file of Array.from(files)) {
        const uploaded = await client.upload(file, file.type);
        setAttachments((list) => [...list, { blobId: uploaded.blobId, type: file.type || uploaded.type, name: file.name, size: file.size }]);
        changed();
      }
    } catch {
      setMessage(t("compose.attachFailed"));
    } finally {
      setUploading(false);
    }
  }

  return (
    <section
      class="composer"
      role="dialog"
      aria-label={t("compose.title")}
      onKeyDown={(event) => {
        if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
          event.preventDefault();
          void send();
        } else if (event.key === "Escape") {
          event.preventDefault();
          void close();
        }
      }}
    >
      <h2>{t("compose.title")}</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void send();
        }}
      >
        {identities.value.length > 1 && (
          <label>
            {t("compose.from")}
            <select value={identity?.id} onChange={(e) => setIdentityId(e.currentTarget.value)}>
              {identities.value.map((i) => (
                <option key={i.id} value={i.id}>
                  {i.name ? `${i.name} <${i.email}>` : i.email}
                </option>
              ))}
            </select>
          </label>
        )}
        <AddressField label={t("compose.to")} inputRef={first} value={to} onChange={(value) => { setTo(value); changed(); }} />
        <AddressField label={t("compose.cc")} value={cc} onChange={(value) => { setCc(value); changed(); }} />
        <AddressField label={t("compose.bcc")} value={bcc} onChange={(value) => { setBcc(value); changed(); }} />
        <label>
          {t("compose.subject")}
          <input value={subject} onInput={(e) => { setSubject(e.currentTarget.value); changed(); }} />
        </label>
        <label class="check rich-switch">
          <input type="checkbox" role="switch" checked={rich} onChange={(e) => switchRich(e.currentTarget.checked)} />
          {t("compose.rich")}
        </label>
        {rich ? (
          <RichEditor key={editorKey} initial={richStart} editor={editor} onInput={changed} />
        ) : (
          <label class="grow">
            {t("compose.body")}
            <textarea ref={bodyInput} value={body} rows={10} onInput={(e) => { setBody(e.currentTarget.value); changed(); }} />
          </label>
        )}
        {attachments.length > 0 && (
          <ul class="attachments" aria-label={t("mail.attachments")}>
            {attachments.map((a) => (
              <li key={a.blobId}>
                {a.name} <span class="size">{t("mail.sizeKb", { size: Math.ceil(a.size / 1024) })}</span>{" "}
                <button
                  type="button"
                  class="link"
                  aria-label={t("compose.removeAttachment", { name: a.name })}
                  onClick={() => {
                    setAttachments((list) => list.filter((x) => x.blobId !== a.blobId));
                    changed();
                  }}
                >
                  ×
                </button>
              </li>
            ))}
          </ul>
        )}
        <p class="hint" role="status">{message ?? ""}</p>
        <div class="actions">
          <button type="submit" disabled={uploading}>{t("compose.send")}</button>
          <label class="file">
            {t("compose.attach")}
            <input type="file" multiple onChange={(e) => void attach(e.currentTarget.files)} />
          </label>
          <button type="button" onClick={() => { dirty.current = true; void saveDraft(); }}>{t("compose.saveDraft")}</button>
          <button type="button" class="link" onClick={() => void close()}>{t("compose.close")}</button>
          <button type="button" class="link" onClick={() => void discard()}>{t("compose.discard")}</button>
        </div>
      </form>
    </section>
  );
}
