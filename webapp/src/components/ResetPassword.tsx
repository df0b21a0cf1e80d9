import { useState } from "preact/hooks";

import { api } from "../app/state";
import { t } from "../i18n";

/** The page the one-time reset link opens: /reset-password#token=… (never sent to a server log). */
export function ResetPassword() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? "";
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  if (done) {
    return (
      <main class="sign-in">
        <h1>{t("reset.title")}</h1>
        <p role="status">{t("reset.done")}</p>
        <a href="/">{t("reset.signIn")}</a>
      </main>
    );
  }
  return (
    <main class="sign-in">
      <h1>{t("reset.title")}</h1>
      <form
        onSubmit={async (event) => {
          event.preventDefault();
          if (password !== again) {
            setMessage(t("reset.mismatch"));
            return;
          }
          setBusy(true);
          const outcome = await api.resetPassword(token, password);
          setBusy(false);
          if (outcome.kind === "done") {
            // The token is spent: do not leave it in the address bar or the history.
            history.replaceState(null, "", "/reset-password");
            setDone(true);
          } else if (outcome.kind === "invalid-token") setMessage(t("reset.invalid"));
          else if (outcome.kind === "weak-password") {
            setMessage(outcome.reason === "too-short" ? t("reset.tooShort", { min: outcome.minLength }) : t("reset.common"));
          } else setMessage(t("signIn.unavailable"));
        }}
      >
        <label>
          {t("reset.password")}
          <input type="password" autocomplete="new-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} required />
        </label>
        <label>
          {t("reset.confirm")}
          <input type="password" autocomplete="new-password" value={again} onInput={(e) => setAgain(e.currentTarget.value)} required />
        </label>
        <p class="error" role="alert">{message ?? ""}</p>
        <button type="submit" disabled={busy || token === ""}>{t("reset.submit")}</button>
      </form>
    </main>
  );
}
