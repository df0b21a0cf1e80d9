import { useEffect, useState } from "preact/hooks";

import { chooseNotifications, currentEngine, mailboxes, notificationsWanted, offlineActive } from "../app/state";
import { mailboxName, t } from "../i18n";
import type { Id } from "../jmap/types";

const ALWAYS_KEPT = new Set(["inbox", "drafts", "sent"]);
const MB = 1024 * 1024;

/** This device's settings: what the offline copy keeps, and new-mail notifications. */
export function Settings({ onClose }: { onClose: () => void }) {
  const engine = currentEngine();
  const [days, setDays] = useState(engine?.windowDays ?? 30);
  const [kept, setKept] = useState<Set<Id>>(new Set(engine?.keptMailboxIds ?? []));
  const [attachmentMb, setAttachmentMb] = useState(Math.round((engine?.attachmentLimit ?? 0) / MB));
  const [notify, setNotify] = useState(notificationsWanted());
  const [message, setMessage] = useState<string | null>(null);

  useEffect(() => {
    const close = (event: KeyboardEvent) => event.key === "Escape" && onClose();
    addEventListener("keydown", close);
    return () => removeEventListener("keydown", close);
  }, [onClose]);

  async function save(): Promise<void> {
    if (engine && offlineActive.value) {
      await engine.setWindow(Math.min(365, Math.max(1, days)), [...kept]);
      await engine.setAttachmentLimit(Math.max(0, attachmentMb) * MB);
      void engine.synchronise().catch(() => undefined);
    }
    setMessage(t("settings.saved"));
  }

  return (
    <section class="settings" role="dialog" aria-label={t("settings.title")}>
      <h2>{t("settings.title")}</h2>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void save();
        }}
      >
        <fieldset disabled={!offlineActive.value}>
          <legend>{t("settings.offlineCopy")}</legend>
          {!offlineActive.value && <p class="hint">{t("settings.offlineOff")}</p>}
          <label>
            {t("settings.windowDays")}
            <input type="number" min={1} max={365} value={days} onInput={(e) => setDays(Number(e.currentTarget.value))} />
          </label>
          <p>{t("settings.folders")}</p>
          <ul class="folders">
            {mailboxes.value.map((mailbox) => {
              const always = mailbox.role !== null && ALWAYS_KEPT.has(mailbox.role);
              return (
                <li key={mailbox.id}>
                  <label class="check">
                    <input
                      type="checkbox"
                      checked={always || kept.has(mailbox.id)}
                      disabled={always}
                      onChange={(e) => {
                        const next = new Set(kept);
                        if (e.currentTarget.checked) next.add(mailbox.id);
                        else next.delete(mailbox.id);
                        setKept(next);
                      }}
                    />
                    {mailboxName(mailbox)}
                  </label>
                </li>
              );
            })}
          </ul>
          <label>
            {t("settings.attachments")}
            <input type="number" min={0} max={100} value={attachmentMb} onInput={(e) => setAttachmentMb(Number(e.currentTarget.value))} />
          </label>
        </fieldset>
        <label class="check">
          <input
            type="checkbox"
            checked={notify}
            onChange={async (e) => {
              const wanted = e.currentTarget.checked;
              const granted = await chooseNotifications(wanted);
              setNotify(granted);
              if (wanted && !granted) setMessage(t("settings.notifyDenied"));
            }}
          />
          {t("settings.notify")}
        </label>
        <p class="hint" role="status">{message ?? ""}</p>
        <div class="actions">
          <button type="submit">{t("settings.save")}</button>
          <button type="button" class="link" onClick={onClose}>{t("compose.close")}</button>
        </div>
      </form>
    </section>
  );
}
