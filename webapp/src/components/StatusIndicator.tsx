import { status } from "../app/state";
import { t } from "../i18n";

/** Online / offline / synchronising, announced politely to screen readers. */
export function StatusIndicator() {
  const current = status.value;
  const text = current === "online" ? t("status.online") : current === "offline" ? t("status.offline") : t("status.synchronising");
  return (
    <div
      class={`status status-${current}`}
      role="status"
      aria-live="polite"
      aria-label={t("status.label")}
      title={current === "offline" ? t("status.offlineHint") : undefined}
    >
      <span class="dot" aria-hidden="true" />
      <span class="text">{text}</span>
      {current === "offline" && <span class="visually-hidden"> — {t("status.offlineHint")}</span>}
    </div>
  );
}
