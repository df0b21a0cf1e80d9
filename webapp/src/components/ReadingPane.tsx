import { useEffect, useRef, useState } from "preact/hooks";

import { TRUSTED_SENDERS_KEY, act, composing, notify, richTextPreferred, currentClient, currentEmail, currentEngine, currentMailbox, identities, mailboxes, revision, session, status } from "../app/state";
import { formatDate, formatFullDate, mailboxName, t } from "../i18n";
import { NetworkError } from "../jmap/client";
import { BODY_PROPERTIES, EMAIL_PROPERTIES, type Email, type EmailAddress, type EmailBody, type GetResponse } from "../jmap/types";
import { type ComposeStart, type Original, draftFromEmail, forwardDraft, replyDraft } from "../mail/compose";
import { plainTextDocument, sanitizeMail } from "../mail/sanitize";

function trustedSenders(): Set<string> {
  try {
    return new Set(JSON.parse(localStorage.getItem(TRUSTED_SENDERS_KEY) ?? "[]") as string[]);
  } catch {
    return new Set();
  }
}

function trustSender(address: string): void {
  const senders = trustedSenders();
  senders.add(address.toLowerCase());
  localStorage.setItem(TRUSTED_SENDERS_KEY, JSON.stringify([...senders]));
}

function addresses(list: EmailAddress[] | null): string {
  return (list ?? []).map((a) => (a.name ? `${a.name} <${a.email}>` : a.email)).join(", ");
}

type Loaded = { email: Email; body: EmailBody } | { missing: true } | null;

/** Load an email and its body: from the local copy, else from the server. */
async function load(id: string): Promise<Loaded> {
  const engine = currentEngine();
  if (!engine) return null;
  const cachedEmail = await engine.cache.getEmail(id);
  const cachedBody = await engine.cache.getBody(id);
  if (cachedEmail && cachedBody) return { email: cachedEmail, body: cachedBody };
  const client = currentClient();
  if (!client || status.value === "offline") {
    if (cachedEmail) {
      const text = { "0": { value: cachedEmail.preview, isEncodingProblem: false, isTruncated: true } };
      const part = { partId: "0", blobId: null, size: 0, name: null, type: "text/plain", charset: null, disposition: null, cid: null };
      return { email: cachedEmail, body: { emailId: id, bodyValues: text, textBody: [part], htmlBody: [part], attachments: [] } };
    }
    return { missing: true };
  }
  const result = await client.call("Email/get", {
    accountId: client.accountId,
    ids: [id],
    properties: [...EMAIL_PROPERTIES, ...BODY_PROPERTIES],
    fetchHTMLBodyValues: true,
    fetchTextBodyValues: true,
  });
  const item = (result.args as unknown as GetResponse<Email & EmailBody>).list[0];
  if (!item) return { missing: true };
  const { bodyValues, textBody, htmlBody, attachments, ...email } = item;
  return { email, body: { emailId: id, bodyValues, textBody, htmlBody, attachments } };
}

function frameDocument(body: EmailBody, allowRemote: boolean): { document: string; blocked: number } {
  const html = body.htmlBody.find((part) => part.type === "text/html" && part.partId && body.bodyValues[part.partId]);
  if (html?.partId) return sanitizeMail(body.bodyValues[html.partId]?.value ?? "", { allowRemote });
  const text = body.textBody.map((part) => (part.partId ? (body.bodyValues[part.partId]?.value ?? "") : "")).join("\n");
  return { document: plainTextDocument(text), blocked: 0 };
}

function plainText(body: EmailBody): string {
  return body.textBody.map((part) => (part.partId ? (body.bodyValues[part.partId]?.value ?? "") : "")).join("\n");
}

/** What a reply or forward quotes: the text, and the HTML when the message has some. */
function original(body: EmailBody): Original {
  const html = body.htmlBody.find((part) => part.type === "text/html" && part.partId && body.bodyValues[part.partId]);
  return { text: plainText(body), html: html?.partId ? (body.bodyValues[html.partId]?.value ?? null) : null };
}

function composeStart(): ComposeStart {
  const identity = identities.value[0];
  const address = identity?.email ?? session.value?.account.address ?? "";
  return {
    from: { name: identity?.name || session.value?.account.name || null, email: address },
    domain: address.split("@")[1] ?? "localhost",
    rich: richTextPreferred(),
  };
}

/** The other messages of ``email``'s conversation, oldest first (RFC 8621 §3 Thread/get). */
async function loadThread(email: Email): Promise<Email[]> {
  const engine = currentEngine();
  const client = currentClient();
  const others = (list: Email[]) =>
    list.filter((e) => e.threadId === email.threadId && e.id !== email.id).sort((a, b) => (a.receivedAt < b.receivedAt ? -1 : 1));
  if (client && status.value !== "offline") {
    try {
      const batch = client.batch();
      const thread = batch.call("Thread/get", { accountId: client.accountId, ids: [email.threadId] });
      const get = batch.call("Email/get", {
        accountId: client.accountId,
        "#ids": thread.ref("/list/*/emailIds"),
        properties: [...EMAIL_PROPERTIES],
      });
      await batch.send();
      return others(((await get.result).args as unknown as GetResponse<Email>).list);
    } catch (error) {
      if (!(error instanceof NetworkError)) return [];
    }
  }
  return others((await engine?.cache.allEmails()) ?? []);
}

function ThreadItem({ email }: { email: Email }) {
  const [open, setOpen] = useState(false);
  const [loaded, setLoaded] = useState<Loaded>(null);
  const frame = useRef<HTMLIFrameElement>(null);
  useEffect(() => {
    if (open && loaded === null) void load(email.id).then(setLoaded, () => setLoaded({ missing: true }));
  }, [open]);
  const sender = email.from?.[0];
  const from = sender?.email.toLowerCase() ?? "";
  return (
    <li>
      <button type="button" class="thread-item" aria-expanded={open} onClick={() => setOpen(!open)}>
        <strong>{sender ? sender.name || sender.email : ""}</strong> <time dateTime={email.receivedAt}>{formatDate(email.receivedAt)}</time>{" "}
        <span class="preview">{email.preview}</span>
      </button>
      {open && loaded !== null && ("missing" in loaded ? (
        <p>{t("mail.notCached")}</p>
      ) : (
        <iframe
          ref={frame}
          class="thread-body"
          title={loaded.email.subject || t("mail.noSubject")}
          sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
          referrerpolicy="no-referrer"
          srcdoc={frameDocument(loaded.body, from !== "" && trustedSenders().has(from)).document}
          onLoad={() => {
            const doc = frame.current?.contentDocument;
            if (doc && frame.current) frame.current.style.height = `${doc.documentElement.scrollHeight + 16}px`;
          }}
        />
      ))}
    </li>
  );
}

/** The earlier and later messages of the open message's conversation, folded. */
function Conversation({ email }: { email: Email }) {
  const [others, setOthers] = useState<Email[]>([]);
  useEffect(() => {
    let live = true;
    void loadThread(email).then((list) => live && setOthers(list), () => undefined);
    return () => {
      live = false;
    };
  }, [email.id, email.threadId]);
  if (others.length === 0) return null;
  return (
    <section class="conversation" aria-label={t("mail.conversation", { count: others.length + 1 })}>
      <h3>{t("mail.conversation", { count: others.length + 1 })}</h3>
      <ol>
        {others.map((other) => (
          <ThreadItem key={other.id} email={other} />
        ))}
      </ol>
    </section>
  );
}

/** The open message: headers, the sanitised body in a sandboxed frame, attachments, actions. */
export function ReadingPane() {
  const id = currentEmail.value;
  const [loaded, setLoaded] = useState<Loaded>(null);
  const [allowed, setAllowed] = useState(false);
  const frame = useRef<HTMLIFrameElement>(null);
  const shown = useRef<string | null>(null);

  useEffect(() => {
    setLoaded(null);
    setAllowed(false);
    shown.current = id;
  }, [id]);
  useEffect(() => {
    // Reloaded when the copy changes (a flag, a sync) without blanking the pane, so what the
    // user opened or scrolled in the conversation stays as it is.
    if (!id) return;
    let live = true;
    void load(id).then(
      (result) => live && shown.current === id && setLoaded(result),
      () => live && shown.current === id && setLoaded((current) => current ?? { missing: true }),
    );
    return () => {
      live = false;
    };
  }, [id, revision.value]);

  // Opening a message marks it read (queued like any action, so it works offline).
  useEffect(() => {
    if (loaded && "email" in loaded && !loaded.email.keywords.$seen) {
      void act({ kind: "keyword", emailId: loaded.email.id, keyword: "$seen", value: true });
    }
  }, [loaded && "email" in loaded ? loaded.email.id : null]);

  if (!id) return <section class="reader empty"><p>{t("mail.noSelection")}</p></section>;
  if (loaded === null) return <section class="reader" aria-busy="true"><p>{t("mail.loadingMessage")}</p></section>;
  if ("missing" in loaded) return <section class="reader"><p>{t("mail.notCached")}</p></section>;

  const { email, body } = loaded;
  const from = email.from?.[0]?.email.toLowerCase() ?? "";
  const remoteAllowed = allowed || (from !== "" && trustedSenders().has(from));
  const { document: srcdoc, blocked } = frameDocument(body, remoteAllowed);
  const mailboxId = currentMailbox.value;
  const byRole = (role: string) => mailboxes.value.find((m) => m.role === role);
  const moveTo = (role: string) => {
    const target = byRole(role);
    if (target && mailboxId && mailboxId !== target.id) {
      void act({ kind: "move", emailId: email.id, from: mailboxId, to: target.id });
      currentEmail.value = null;
    }
  };
  const client = currentClient();
  // A saved draft (in Drafts, or marked $draft) is continued in the composer; saving
  // replaces it and sending destroys it (``savedDraft``).
  const drafts = byRole("drafts");
  const isDraft = email.keywords.$draft === true || (drafts !== undefined && email.mailboxIds[drafts.id] === true);
  const editDraft = () => {
    const draft = draftFromEmail(email, body, { domain: composeStart().domain, attachmentName: t("mail.attachmentName") });
    if (draft) {
      composing.value = { draft, savedDraft: email.id };
      // The version shown here goes away with the next save or the send.
      currentEmail.value = null;
    }
    else notify({ key: "mail.draftNotCached" });
  };

  return (
    <article class="reader" aria-labelledby="reader-subject">
      <div class="toolbar" role="toolbar" aria-label={t("mail.actions")}>
        {isDraft && (
          <button type="button" onClick={editDraft}>
            {t("mail.editDraft")}
          </button>
        )}
        <button type="button" onClick={() => (composing.value = { draft: replyDraft(email, original(body), composeStart(), { all: false }), savedDraft: null })}>
          {t("mail.reply")}
        </button>
        <button type="button" onClick={() => (composing.value = { draft: replyDraft(email, original(body), composeStart(), { all: true }), savedDraft: null })}>
          {t("mail.replyAll")}
        </button>
        <button
          type="button"
          onClick={() => {
            const attachments = body.attachments.flatMap((part) =>
              part.blobId ? [{ blobId: part.blobId, type: part.type, name: part.name ?? t("mail.attachmentName"), size: part.size }] : [],
            );
            composing.value = { draft: forwardDraft(email, original(body), attachments, composeStart()), savedDraft: null };
          }}
        >
          {t("mail.forward")}
        </button>
        <button type="button" onClick={() => void act({ kind: "keyword", emailId: email.id, keyword: "$flagged", value: !email.keywords.$flagged })}>
          {email.keywords.$flagged ? t("mail.unflag") : t("mail.flag")}
        </button>
        <button type="button" onClick={() => void act({ kind: "keyword", emailId: email.id, keyword: "$seen", value: !email.keywords.$seen })}>
          {email.keywords.$seen ? t("mail.markUnread") : t("mail.markRead")}
        </button>
        {byRole("archive") && <button type="button" onClick={() => moveTo("archive")}>{t("mail.archive")}</button>}
        {byRole("junk") && <button type="button" onClick={() => moveTo("junk")}>{t("mail.junk")}</button>}
        {byRole("trash") && <button type="button" onClick={() => moveTo("trash")}>{t("mail.delete")}</button>}
        {mailboxId && !mailboxId.startsWith("local:") && (
          <select
            aria-label={t("mail.moveTo")}
            value=""
            onChange={(event) => {
              const target = event.currentTarget.value;
              if (target && target !== mailboxId) {
                void act({ kind: "move", emailId: email.id, from: mailboxId, to: target });
                currentEmail.value = null;
              }
            }}
          >
            <option value="">{t("mail.moveTo")}</option>
            {mailboxes.value
              .filter((m) => m.id !== mailboxId)
              .map((m) => (
                <option key={m.id} value={m.id}>
                  {mailboxName(m)}
                </option>
              ))}
          </select>
        )}
      </div>
      <h2 id="reader-subject">{email.subject || t("mail.noSubject")}</h2>
      <dl class="headers">
        <dt>{t("mail.from")}</dt>
        <dd>{addresses(email.from)}</dd>
        <dt>{t("mail.to")}</dt>
        <dd>{addresses(email.to)}</dd>
        {email.cc && email.cc.length > 0 && (
          <>
            <dt>{t("mail.cc")}</dt>
            <dd>{addresses(email.cc)}</dd>
          </>
        )}
        <dt>{t("mail.date")}</dt>
        <dd>
          <time dateTime={email.receivedAt}>{formatFullDate(email.sentAt ?? email.receivedAt)}</time>
        </dd>
      </dl>
      <Conversation email={email} />
      {blocked > 0 && (
        <div class="remote-banner" role="note">
          <span>{t("mail.remoteBlocked")}</span>
          <button type="button" onClick={() => setAllowed(true)}>{t("mail.showImages")}</button>
          {from && (
            <button
              type="button"
              onClick={() => {
                trustSender(from);
                setAllowed(true);
              }}
            >
              {t("mail.alwaysFromSender", { sender: from })}
            </button>
          )}
        </div>
      )}
      <iframe
        ref={frame}
        class="body"
        title={email.subject || t("mail.noSubject")}
        sandbox="allow-same-origin allow-popups allow-popups-to-escape-sandbox"
        referrerpolicy="no-referrer"
        srcdoc={srcdoc}
        onLoad={() => {
          const doc = frame.current?.contentDocument;
          if (doc && frame.current) frame.current.style.height = `${doc.documentElement.scrollHeight + 16}px`;
        }}
      />
      {body.attachments.length > 0 && client?.session && (
        <section class="attachments" aria-label={t("mail.attachments")}>
          <h3>{t("mail.attachments")}</h3>
          <ul>
            {body.attachments.map((part) => {
              const name = part.name ?? t("mail.attachmentName");
              return part.blobId ? (
                <li key={part.blobId}>
                  <a
                    href={client.downloadUrl(part.blobId, name, part.type)}
                    download={name}
                    aria-label={t("mail.download", { name })}
                  >
                    {name}
                  </a>{" "}
                  <span class="size">{t("mail.sizeKb", { size: Math.ceil(part.size / 1024) })}</span>
                </li>
              ) : null;
            })}
          </ul>
        </section>
      )}
    </article>
  );
}
