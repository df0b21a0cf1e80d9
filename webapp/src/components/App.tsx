import { useState } from "preact/hooks";

import { chooseOffline, composing, end, identities, offlineActive, offlineChosen, phase, richTextPreferred, searchText, session } from "../app/state";
import { blankDraft } from "../mail/compose";
import { Composer } from "./Composer";
import { Settings } from "./Settings";
import { language, setLanguage, t } from "../i18n";
import { MailboxTree } from "./MailboxTree";
import { MessageList } from "./MessageList";
import { Notices } from "./Notices";
import { ReadingPane } from "./ReadingPane";
import { ResetPassword } from "./ResetPassword";
import { SignIn } from "./SignIn";
import { StatusIndicator } from "./StatusIndicator";

function LanguageSwitch() {
  return (
    <button
      type="button"
      class="link"
      lang={language.value === "fr" ? "en" : "fr"}
      aria-label={t("language.label")}
      onClick={() => setLanguage(language.value === "fr" ? "en" : "fr")}
    >
      {t("language.switch")}
    </button>
  );
}

function OfflineChoice() {
  const allowed = session.value?.webOffline ?? false;
  return (
    <label class="check offline-choice" title={allowed ? t("settings.offlineWarning") : t("settings.offlineForbidden")}>
      <input
        type="checkbox"
        checked={allowed && (offlineActive.value || offlineChosen())}
        disabled={!allowed}
        aria-describedby="offline-warning"
        onChange={(e) => void chooseOffline(e.currentTarget.checked)}
      />
      {t("settings.offline")}
      <span id="offline-warning" class="visually-hidden">
        {allowed ? t("settings.offlineWarning") : t("settings.offlineForbidden")}
      </span>
    </label>
  );
}

function SearchBox() {
  const [text, setText] = useState(searchText.value);
  return (
    <form
      role="search"
      class="search"
      onSubmit={(event) => {
        event.preventDefault();
        searchText.value = text.trim();
      }}
    >
      <input type="search" aria-label={t("search.label")} placeholder={t("search.label")} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      <button type="submit">{t("search.submit")}</button>
      {searchText.value && (
        <button
          type="button"
          class="link"
          onClick={() => {
            setText("");
            searchText.value = "";
          }}
        >
          {t("search.clear")}
        </button>
      )}
    </form>
  );
}

function startComposing(): void {
  const identity = identities.value[0];
  const address = identity?.email ?? session.value?.account.address ?? "";
  composing.value = {
    draft: blankDraft({
      from: { name: identity?.name || session.value?.account.name || null, email: address },
      domain: address.split("@")[1] ?? "localhost",
      rich: richTextPreferred(),
    }),
    savedDraft: null,
  };
}

/** The application shell: sign-in, the password-reset page, or the mail screens. */
export function App() {
  const [settingsOpen, setSettingsOpen] = useState(false);
  if (location.pathname === "/reset-password") {
    return (
      <>
        <header class="top"><span class="brand">{t("app.name")}</span><LanguageSwitch /></header>
        <ResetPassword />
      </>
    );
  }
  if (phase.value === "loading") return <p class="loading" role="status">{t("app.loading")}</p>;
  if (phase.value === "signed-out") {
    return (
      <>
        <header class="top"><span class="brand">{t("app.name")}</span><LanguageSwitch /></header>
        <SignIn />
      </>
    );
  }
  return (
    <div class="shell">
      <a class="skip" href="#message-list">{t("app.skipToList")}</a>
      <header class="top">
        <span class="brand">{t("app.name")}</span>
        <button type="button" onClick={startComposing}>{t("compose.new")}</button>
        <SearchBox />
        <StatusIndicator />
        <span class="account">{session.value?.account.address}</span>
        <OfflineChoice />
        <LanguageSwitch />
        <button type="button" class="link" onClick={() => setSettingsOpen(true)}>{t("settings.title")}</button>
        <button type="button" onClick={() => void end()}>{t("mail.signOut")}</button>
      </header>
      <Notices />
      <div class="panes">
        <MailboxTree />
        <MessageList />
        <ReadingPane />
      </div>
      <Composer />
      {settingsOpen && <Settings onClose={() => setSettingsOpen(false)} />}
    </div>
  );
}
