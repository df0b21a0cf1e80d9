import { useEffect, useRef, useState } from "preact/hooks";

import { api, begin } from "../app/state";
import { t } from "../i18n";
import type { SignInOutcome } from "../session";
import { assert, webauthnAvailable } from "../webauthn";

type Step = { kind: "password" } | { kind: "second-factor"; methods: string[]; pending: string };

/** Address and password, then the second factor; one generic message for any failure. */
export function SignIn() {
  const [step, setStep] = useState<Step>({ kind: "password" });
  const [address, setAddress] = useState("");
  const [password, setPassword] = useState("");
  const [stay, setStay] = useState(false);
  const [code, setCode] = useState("");
  const [useRecovery, setUseRecovery] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [waitUntil, setWaitUntil] = useState(0);
  const [now, setNow] = useState(Date.now());
  const [busy, setBusy] = useState(false);
  const codeInput = useRef<HTMLInputElement>(null);

  const waiting = Math.max(0, Math.ceil((waitUntil - now) / 1000));
  useEffect(() => {
    if (waitUntil <= Date.now()) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [waitUntil]);
  useEffect(() => {
    if (step.kind === "second-factor") codeInput.current?.focus();
  }, [step.kind, useRecovery]);

  async function handle(outcome: SignInOutcome): Promise<void> {
    switch (outcome.kind) {
      case "signed-in":
        setPassword("");
        await begin(outcome);
        return;
      case "second-factor":
        setError(null);
        setStep({ kind: "second-factor", methods: outcome.methods, pending: outcome.pending });
        return;
      case "rate-limited":
        setNow(Date.now());
        setWaitUntil(Date.now() + outcome.retryAfter * 1000);
        setError(null);
        return;
      case "unavailable":
        setError(t("signIn.unavailable"));
        return;
      case "invalid":
        setError(t("signIn.failed"));
        return;
    }
  }

  async function run(work: () => Promise<SignInOutcome>): Promise<void> {
    setBusy(true);
    try {
      await handle(await work());
    } finally {
      setBusy(false);
    }
  }

  const rateMessage = waiting > 0 ? t("signIn.rateLimited", { seconds: waiting }) : null;
  const message = rateMessage ?? error;

  if (step.kind === "second-factor") {
    const pending = step.pending;
    const canKey = step.methods.includes("webauthn") && webauthnAvailable();
    return (
      <main class="sign-in">
        <h1>{t("signIn.secondFactor")}</h1>
        <form
          onSubmit={(event) => {
            event.preventDefault();
            void run(() =>
              api.secondFactor(pending, useRecovery ? { recoveryCode: code.trim() } : { totp: code.replace(/\s/g, "") }),
            );
          }}
        >
          <label>
            {useRecovery ? t("signIn.recovery") : t("signIn.totp")}
            <input
              ref={codeInput}
              value={code}
              onInput={(e) => setCode(e.currentTarget.value)}
              autocomplete="one-time-code"
              inputMode={useRecovery ? "text" : "numeric"}
              required
            />
          </label>
          <p class="error" role="alert">{message ?? ""}</p>
          <button type="submit" disabled={busy || waiting > 0}>{t("signIn.verify")}</button>
          <button type="button" class="link" onClick={() => setUseRecovery(!useRecovery)}>
            {useRecovery ? t("signIn.useTotp") : t("signIn.useRecovery")}
          </button>
          {canKey && (
            <button
              type="button"
              disabled={busy || waiting > 0}
              onClick={() =>
                void run(async () => {
                  const options = await api.webauthnOptions(pending);
                  const credential = options === null ? null : await assert(options);
                  return credential === null ? { kind: "invalid" } : api.secondFactor(pending, { webauthn: credential });
                })
              }
            >
              {t("signIn.webauthn")}
            </button>
          )}
          <button type="button" class="link" onClick={() => setStep({ kind: "password" })}>
            {t("signIn.back")}
          </button>
        </form>
      </main>
    );
  }

  return (
    <main class="sign-in">
      <h1>{t("signIn.title")}</h1>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          void run(() => api.signIn(address.trim(), password, stay));
        }}
      >
        <label>
          {t("signIn.address")}
          <input type="email" autocomplete="username" value={address} onInput={(e) => setAddress(e.currentTarget.value)} required />
        </label>
        <label>
          {t("signIn.password")}
          <input
            type="password"
            autocomplete="current-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            required
          />
        </label>
        <label class="check">
          <input type="checkbox" checked={stay} onChange={(e) => setStay(e.currentTarget.checked)} aria-describedby="stay-warning" />
          {t("signIn.stay")}
        </label>
        <p id="stay-warning" class="hint">{t("signIn.stayWarning")}</p>
        <p class="error" role="alert">{message ?? ""}</p>
        <button type="submit" disabled={busy || waiting > 0}>{t("signIn.submit")}</button>
      </form>
    </main>
  );
}
