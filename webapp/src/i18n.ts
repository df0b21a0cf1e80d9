/**
 * French and English, from the browser's language, switchable. Every string the user sees
 * comes from here; i18n.test.ts checks that both languages have every key and that every
 * key the code uses exists.
 */

import { signal } from "@preact/signals";

export type Language = "en" | "fr";

const en = {
  "app.name": "Hirondelle",
  "app.loading": "Loading…",
  "app.skipToList": "Skip to the message list",
  "language.label": "Language",
  "language.switch": "Français",
  "signIn.title": "Sign in",
  "signIn.address": "Email address",
  "signIn.password": "Password",
  "signIn.stay": "Stay signed in on this computer",
  "signIn.stayWarning": "Not on a shared or public computer: anyone who uses it after you would be in your mailbox.",
  "signIn.submit": "Sign in",
  "signIn.failed": "Sign-in failed. Check your address and password, then try again.",
  "signIn.rateLimited": "Too many attempts. Try again in {seconds} s.",
  "signIn.unavailable": "The server cannot be reached. Try again in a moment.",
  "signIn.secondFactor": "Second step",
  "signIn.totp": "Code from your authenticator app",
  "signIn.recovery": "Recovery code",
  "signIn.useRecovery": "Use a recovery code instead",
  "signIn.useTotp": "Use a code from the app instead",
  "signIn.webauthn": "Use a security key",
  "signIn.verify": "Verify",
  "signIn.back": "Back",
  "reset.title": "Choose a new password",
  "reset.password": "New password",
  "reset.confirm": "New password again",
  "reset.submit": "Set the password",
  "reset.mismatch": "The two passwords differ.",
  "reset.invalid": "This link is not valid any more. Ask for a new one.",
  "reset.tooShort": "Too short: at least {min} characters.",
  "reset.common": "Too common: choose a password that is harder to guess.",
  "reset.done": "Your password is set. You can sign in now.",
  "reset.signIn": "Go to sign-in",
  "status.online": "Online",
  "status.offline": "Offline",
  "status.offlineHint": "Your changes are kept and sent when the connection returns.",
  "status.synchronising": "Synchronising…",
  "status.label": "Connection",
  "mail.mailboxes": "Mailboxes",
  "mail.messages": "Messages",
  "mail.unread": "{count} unread",
  "mail.empty": "No messages",
  "mail.noSelection": "Select a message to read it",
  "mail.loadingMessage": "Loading the message…",
  "mail.noSubject": "(no subject)",
  "mail.from": "From",
  "mail.to": "To",
  "mail.cc": "Cc",
  "mail.date": "Date",
  "mail.attachments": "Attachments",
  "mail.download": "Download {name}",
  "mail.attachmentName": "attachment",
  "mail.sizeKb": "{size} KB",
  "settings.title": "Settings",
  "settings.offlineCopy": "Offline copy on this computer",
  "settings.offlineOff": "Choose “Use this computer offline” first.",
  "settings.windowDays": "Days of mail to keep",
  "settings.folders": "Folders to keep (Inbox, Drafts and Sent always are):",
  "settings.attachments": "Keep attachments up to (MB, 0 for none)",
  "settings.notify": "Notify me of new mail",
  "settings.notifyDenied": "The browser does not allow notifications for this site.",
  "settings.save": "Save",
  "settings.saved": "Settings saved.",
  "settings.offline": "Use this computer offline",
  "settings.offlineWarning": "Keeps your recent mail on this computer. Not on a shared or public computer.",
  "settings.offlineForbidden": "Your administrator does not allow offline use.",
  "mail.remoteBlocked": "Remote images are blocked to protect your privacy.",
  "mail.showImages": "Show images",
  "mail.alwaysFromSender": "Always for {sender}",
  "mail.notCached": "This message is not available offline.",
  "mail.flag": "Flag",
  "mail.unflag": "Remove flag",
  "mail.selected": "{count} selected",
  "mail.selectionActions": "Selected messages",
  "mail.clearSelection": "Clear selection",
  "mail.deleteForever": "Delete {count} message(s) for good?",
  "mail.dragCount": "{count} message(s)",
  "compose.format": "Formatting",
  "compose.bold": "Bold",
  "compose.italic": "Italic",
  "compose.underline": "Underline",
  "compose.bulleted": "Bulleted list",
  "compose.numbered": "Numbered list",
  "compose.link": "Link",
  "compose.linkPrompt": "Address of the link",
  "compose.quote": "Quote",
  "compose.rich": "Rich text",
  "compose.suggestions": "Address suggestions",
  "compose.fromDirectory": "directory",
  "compose.fromContacts": "contact",
  "mail.markRead": "Mark as read",
  "mail.markUnread": "Mark as unread",
  "mail.delete": "Delete",
  "mail.archive": "Archive",
  "mail.junk": "Mark as junk",
  "mail.moveTo": "Move to…",
  "mail.conversation": "Conversation of {count} messages",
  "mail.flagged": "Flagged",
  "mail.unreadMark": "Unread",
  "mail.actions": "Message actions",
  "mail.signOut": "Sign out",
  "mail.conflicts": "Some changes could not be applied",
  "mail.dismiss": "Dismiss",
  "conflict.deleted": "The message was deleted meanwhile.",
  "conflict.moved-elsewhere": "The message was moved elsewhere meanwhile.",
  "conflict.draft-changed": "The draft was changed elsewhere; both versions are kept in Drafts.",
  "conflict.refused": "The server refused the change ({detail}).",
  "offline.windowReduced": "The browser's storage is full: mail of the last {days} days is kept offline.",
  "offline.storageFull": "The browser's storage is full: messages are kept without their bodies.",
  "offline.purged": "Your administrator turned off offline use: the local copy was removed.",
  "compose.title": "New message",
  "compose.new": "Write",
  "compose.from": "From",
  "compose.to": "To",
  "compose.cc": "Cc",
  "compose.bcc": "Bcc",
  "compose.subject": "Subject",
  "compose.body": "Message",
  "compose.send": "Send",
  "compose.saveDraft": "Save draft",
  "compose.close": "Close",
  "compose.discard": "Discard",
  "compose.attach": "Attach files",
  "compose.attachOffline": "Attaching files needs the connection.",
  "compose.attachFailed": "The file could not be attached.",
  "compose.removeAttachment": "Remove {name}",
  "compose.saved": "Draft saved.",
  "compose.noRecipient": "Add at least one recipient.",
  "compose.noIdentity": "No sending address is available yet.",
  "mail.reply": "Reply",
  "mail.replyAll": "Reply all",
  "mail.forward": "Forward",
  "mail.editDraft": "Edit draft",
  "mail.draftNotCached": "This draft's full text is not available offline: it can be edited once online.",
  "search.label": "Search mail",
  "search.submit": "Search",
  "search.clear": "Clear the search",
  "search.results": "Search results",
  "role.inbox": "Inbox",
  "role.drafts": "Drafts",
  "role.sent": "Sent",
  "role.trash": "Trash",
  "role.junk": "Junk",
  "role.archive": "Archive",
  "role.outbox": "Outbox",
} as const;

export type MessageKey = keyof typeof en;

const fr: Record<MessageKey, string> = {
  "app.name": "Hirondelle",
  "app.loading": "Chargement…",
  "app.skipToList": "Aller à la liste des messages",
  "language.label": "Langue",
  "language.switch": "English",
  "signIn.title": "Connexion",
  "signIn.address": "Adresse électronique",
  "signIn.password": "Mot de passe",
  "signIn.stay": "Rester connecté sur cet ordinateur",
  "signIn.stayWarning": "Pas sur un ordinateur partagé ou public : la personne suivante se retrouverait dans votre messagerie.",
  "signIn.submit": "Se connecter",
  "signIn.failed": "La connexion a échoué. Vérifiez votre adresse et votre mot de passe, puis réessayez.",
  "signIn.rateLimited": "Trop de tentatives. Réessayez dans {seconds} s.",
  "signIn.unavailable": "Le serveur est injoignable. Réessayez dans un instant.",
  "signIn.secondFactor": "Deuxième étape",
  "signIn.totp": "Code de votre application d’authentification",
  "signIn.recovery": "Code de secours",
  "signIn.useRecovery": "Utiliser plutôt un code de secours",
  "signIn.useTotp": "Utiliser plutôt un code de l’application",
  "signIn.webauthn": "Utiliser une clé de sécurité",
  "signIn.verify": "Vérifier",
  "signIn.back": "Retour",
  "reset.title": "Choisir un nouveau mot de passe",
  "reset.password": "Nouveau mot de passe",
  "reset.confirm": "Nouveau mot de passe, à nouveau",
  "reset.submit": "Enregistrer le mot de passe",
  "reset.mismatch": "Les deux mots de passe diffèrent.",
  "reset.invalid": "Ce lien n’est plus valable. Demandez-en un nouveau.",
  "reset.tooShort": "Trop court : au moins {min} caractères.",
  "reset.common": "Trop courant : choisissez un mot de passe plus difficile à deviner.",
  "reset.done": "Votre mot de passe est enregistré. Vous pouvez vous connecter.",
  "reset.signIn": "Aller à la connexion",
  "status.online": "En ligne",
  "status.offline": "Hors ligne",
  "status.offlineHint": "Vos modifications sont gardées et envoyées au retour de la connexion.",
  "status.synchronising": "Synchronisation…",
  "status.label": "Connexion",
  "mail.mailboxes": "Dossiers",
  "mail.messages": "Messages",
  "mail.unread": "{count} non lus",
  "mail.empty": "Aucun message",
  "mail.noSelection": "Choisissez un message pour le lire",
  "mail.loadingMessage": "Chargement du message…",
  "mail.noSubject": "(sans objet)",
  "mail.from": "De",
  "mail.to": "À",
  "mail.cc": "Cc",
  "mail.date": "Date",
  "mail.attachments": "Pièces jointes",
  "mail.download": "Télécharger {name}",
  "mail.attachmentName": "pièce jointe",
  "mail.sizeKb": "{size} Ko",
  "settings.title": "Réglages",
  "settings.offlineCopy": "Copie hors ligne sur cet ordinateur",
  "settings.offlineOff": "Choisissez d’abord « Utiliser cet ordinateur hors ligne ».",
  "settings.windowDays": "Jours de courrier à garder",
  "settings.folders": "Dossiers à garder (Boîte de réception, Brouillons et Envoyés le sont toujours) :",
  "settings.attachments": "Garder les pièces jointes jusqu’à (Mo, 0 pour aucune)",
  "settings.notify": "Me prévenir des nouveaux messages",
  "settings.notifyDenied": "Le navigateur n’autorise pas les notifications pour ce site.",
  "settings.save": "Enregistrer",
  "settings.saved": "Réglages enregistrés.",
  "settings.offline": "Utiliser cet ordinateur hors ligne",
  "settings.offlineWarning": "Garde votre courrier récent sur cet ordinateur. Pas sur un ordinateur partagé ou public.",
  "settings.offlineForbidden": "Votre administrateur n’autorise pas l’usage hors ligne.",
  "mail.remoteBlocked": "Les images distantes sont bloquées pour protéger votre vie privée.",
  "mail.showImages": "Afficher les images",
  "mail.alwaysFromSender": "Toujours pour {sender}",
  "mail.notCached": "Ce message n’est pas disponible hors ligne.",
  "mail.flag": "Suivre",
  "mail.unflag": "Ne plus suivre",
  "mail.selected": "{count} sélectionné(s)",
  "mail.selectionActions": "Messages sélectionnés",
  "mail.clearSelection": "Tout désélectionner",
  "mail.deleteForever": "Supprimer définitivement {count} message(s) ?",
  "mail.dragCount": "{count} message(s)",
  "compose.format": "Mise en forme",
  "compose.bold": "Gras",
  "compose.italic": "Italique",
  "compose.underline": "Souligné",
  "compose.bulleted": "Liste à puces",
  "compose.numbered": "Liste numérotée",
  "compose.link": "Lien",
  "compose.linkPrompt": "Adresse du lien",
  "compose.quote": "Citation",
  "compose.rich": "Texte enrichi",
  "compose.suggestions": "Suggestions d’adresses",
  "compose.fromDirectory": "annuaire",
  "compose.fromContacts": "contact",
  "mail.markRead": "Marquer comme lu",
  "mail.markUnread": "Marquer comme non lu",
  "mail.delete": "Supprimer",
  "mail.archive": "Archiver",
  "mail.junk": "Indésirable",
  "mail.moveTo": "Déplacer vers…",
  "mail.conversation": "Conversation de {count} messages",
  "mail.flagged": "Suivi",
  "mail.unreadMark": "Non lu",
  "mail.actions": "Actions sur le message",
  "mail.signOut": "Se déconnecter",
  "mail.conflicts": "Certaines modifications n’ont pas pu être appliquées",
  "mail.dismiss": "Fermer",
  "conflict.deleted": "Le message a été supprimé entre-temps.",
  "conflict.moved-elsewhere": "Le message a été déplacé ailleurs entre-temps.",
  "conflict.draft-changed": "Le brouillon a été modifié ailleurs ; les deux versions sont dans Brouillons.",
  "conflict.refused": "Le serveur a refusé la modification ({detail}).",
  "offline.windowReduced": "Le stockage du navigateur est plein : le courrier des {days} derniers jours est gardé hors ligne.",
  "offline.storageFull": "Le stockage du navigateur est plein : les messages sont gardés sans leur contenu.",
  "offline.purged": "Votre administrateur a désactivé l’usage hors ligne : la copie locale a été effacée.",
  "compose.title": "Nouveau message",
  "compose.new": "Écrire",
  "compose.from": "De",
  "compose.to": "À",
  "compose.cc": "Cc",
  "compose.bcc": "Cci",
  "compose.subject": "Objet",
  "compose.body": "Message",
  "compose.send": "Envoyer",
  "compose.saveDraft": "Enregistrer le brouillon",
  "compose.close": "Fermer",
  "compose.discard": "Abandonner",
  "compose.attach": "Joindre des fichiers",
  "compose.attachOffline": "Joindre des fichiers demande la connexion.",
  "compose.attachFailed": "Le fichier n’a pas pu être joint.",
  "compose.removeAttachment": "Retirer {name}",
  "compose.saved": "Brouillon enregistré.",
  "compose.noRecipient": "Ajoutez au moins un destinataire.",
  "compose.noIdentity": "Aucune adresse d’envoi n’est encore disponible.",
  "mail.reply": "Répondre",
  "mail.replyAll": "Répondre à tous",
  "mail.forward": "Transférer",
  "mail.editDraft": "Modifier le brouillon",
  "mail.draftNotCached": "Le texte complet de ce brouillon n’est pas disponible hors ligne : il pourra être modifié une fois en ligne.",
  "search.label": "Rechercher dans le courrier",
  "search.submit": "Rechercher",
  "search.clear": "Effacer la recherche",
  "search.results": "Résultats de la recherche",
  "role.inbox": "Boîte de réception",
  "role.drafts": "Brouillons",
  "role.sent": "Envoyés",
  "role.trash": "Corbeille",
  "role.junk": "Indésirables",
  "role.archive": "Archive",
  "role.outbox": "Courrier sortant",
};

export const MESSAGES: Record<Language, Record<MessageKey, string>> = { en, fr };

const STORAGE_KEY = "hirondelle.language";

/** The language to start in: the user's choice, else the browser's, else English. */
export function initialLanguage(
  stored: string | null,
  browserLanguages: readonly string[],
): Language {
  if (stored === "en" || stored === "fr") return stored;
  for (const tag of browserLanguages) {
    const base = tag.toLowerCase().split("-")[0];
    if (base === "fr" || base === "en") return base;
  }
  return "en";
}

function storedLanguage(): string | null {
  try {
    return globalThis.localStorage?.getItem(STORAGE_KEY) ?? null;
  } catch {
    return null;
  }
}

export const language = signal<Language>(
  initialLanguage(storedLanguage(), globalThis.navigator?.languages ?? []),
);

export function setLanguage(next: Language): void {
  language.value = next;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, next);
  } catch {
    // Private mode without storage: the choice lasts for this page.
  }
  if (typeof document !== "undefined") document.documentElement.lang = next;
}

/** The text of ``key`` in the current language, with ``{name}`` placeholders filled. */
export function t(key: MessageKey, params: Record<string, string | number> = {}): string {
  const text = MESSAGES[language.value][key];
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => (name in params ? String(params[name]) : whole));
}

/** The localised name of a mailbox with a role; its own name otherwise. */
export function mailboxName(mailbox: { role: string | null; name: string }): string {
  const key = `role.${mailbox.role ?? ""}`;
  return key in en ? t(key as MessageKey) : mailbox.name;
}

/** Date and time in full, for the reading pane. */
export function formatFullDate(iso: string): string {
  const locale = language.value === "fr" ? "fr-FR" : "en-GB";
  return new Date(iso).toLocaleString(locale, { dateStyle: "full", timeStyle: "short" });
}

export function formatDate(iso: string, now = Date.now()): string {
  const date = new Date(iso);
  const locale = language.value === "fr" ? "fr-FR" : "en-GB";
  const sameDay = new Date(now).toDateString() === date.toDateString();
  return sameDay
    ? date.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" })
    : date.toLocaleDateString(locale, { day: "numeric", month: "short", year: "numeric" });
}
