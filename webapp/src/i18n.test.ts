import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { describe, expect, it } from "vitest";

import { MESSAGES, initialLanguage, language, mailboxName, setLanguage, t } from "./i18n";

function sources(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.tsx?$/.test(name) && !name.endsWith(".test.ts") ? [path] : [];
  });
}

describe("translations", () => {
  it("have every key in both languages, none empty, with the same placeholders", () => {
    const english = Object.keys(MESSAGES.en).sort();
    expect(Object.keys(MESSAGES.fr).sort()).toEqual(english);
    for (const key of english) {
      const en = MESSAGES.en[key as keyof typeof MESSAGES.en];
      const fr = MESSAGES.fr[key as keyof typeof MESSAGES.fr];
      expect(en.trim(), key).not.toBe("");
      expect(fr.trim(), key).not.toBe("");
      const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      expect(placeholders(fr), key).toEqual(placeholders(en));
    }
  });

  it("cover every key the code asks for", () => {
    const used = new Set<string>();
    for (const file of sources(dirname(fileURLToPath(import.meta.url)))) {
      for (const match of readFileSync(file, "utf8").matchAll(/\bt\(\s*"([\w.-]+)"/g)) {
        if (match[1]) used.add(match[1]);
      }
    }
    expect(used.size).toBeGreaterThan(20);
    const missing = [...used].filter((key) => !(key in MESSAGES.en));
    expect(missing).toEqual([]);
  });

  it("start from the stored choice, then the browser's language", () => {
    expect(initialLanguage(null, ["fr-CA", "en"])).toBe("fr");
    expect(initialLanguage(null, ["de-DE", "en-US"])).toBe("en");
    expect(initialLanguage(null, ["de-DE"])).toBe("en");
    expect(initialLanguage("fr", ["en-GB"])).toBe("fr");
    expect(initialLanguage("xx", ["fr"])).toBe("fr");
  });

  it("switch, fill placeholders and name mailboxes by role", () => {
    setLanguage("fr");
    expect(language.value).toBe("fr");
    expect(t("signIn.rateLimited", { seconds: 30 })).toBe("Trop de tentatives. Réessayez dans 30 s.");
    expect(mailboxName({ role: "inbox", name: "INBOX" })).toBe("Boîte de réception");
    expect(mailboxName({ role: "outbox", name: "Outbox" })).toBe("Courrier sortant");
    expect(mailboxName({ role: null, name: "Projets" })).toBe("Projets");
    setLanguage("en");
    expect(mailboxName({ role: "junk", name: "Spam" })).toBe("Junk");
  });
});
