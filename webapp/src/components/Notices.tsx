import { conflicts, dismissConflict, dismissNotice, notices } from "../app/state";
import { type MessageKey, t } from "../i18n";

/** Messages the app owes the user: storage, policy, and conflicts (never dropped silently). */
export function Notices() {
  if (notices.value.length === 0 && conflicts.value.length === 0) return null;
  return (
    <div class="notices" role="alert">
      {notices.value.map((notice, index) => (
        <p key={`n${index}`}>
          {t(notice.key, notice.params)}{" "}
          <button type="button" class="link" onClick={() => dismissNotice(index)}>{t("mail.dismiss")}</button>
        </p>
      ))}
      {conflicts.value.length > 0 && (
        <section aria-label={t("mail.conflicts")}>
          <h2>{t("mail.conflicts")}</h2>
          <ul>
            {conflicts.value.map((conflict) => (
              <li key={conflict.id}>
                {t(`conflict.${conflict.reason}` as MessageKey, { detail: conflict.detail })}{" "}
                <button type="button" class="link" onClick={() => void dismissConflict(conflict)}>{t("mail.dismiss")}</button>
              </li>
            ))}
          </ul>
        </section>
      )}
    </div>
  );
}
