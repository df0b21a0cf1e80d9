/**
 * Search snippets (RFC 8621 §5: SearchSnippet/get returns HTML-escaped text where matches are
 * wrapped in <mark>). They are never given to innerHTML: split into plain and marked runs.
 */

export interface Run {
  text: string;
  marked: boolean;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", "#39": "'" };

function unescape(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos|#39|#x[0-9a-f]+|#\d+);/gi, (whole, name: string) => {
    const lower = name.toLowerCase();
    if (lower in ENTITIES) return ENTITIES[lower] ?? whole;
    const code = lower.startsWith("#x") ? Number.parseInt(lower.slice(2), 16) : Number.parseInt(lower.slice(1), 10);
    return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

/** A snippet's runs; any other tag is shown as text, never interpreted. */
export function snippetRuns(snippet: string): Run[] {
  const runs: Run[] = [];
  const pattern = /<mark>(.*?)<\/mark>/gs;
  let last = 0;
  for (const match of snippet.matchAll(pattern)) {
    if (match.index > last) runs.push({ text: unescape(snippet.slice(last, match.index)), marked: false });
    runs.push({ text: unescape(match[1] ?? ""), marked: true });
    last = match.index + match[0].length;
  }
  if (last < snippet.length) runs.push({ text: unescape(snippet.slice(last)), marked: false });
  return runs.filter((run) => run.text !== "");
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A snippet made here (offline search) in the same form as the server's. */
export function localSnippet(text: string, words: string[]): string {
  const lowered = words.map((w) => w.toLowerCase()).filter(Boolean);
  if (lowered.length === 0) return escape(text);
  const pattern = new RegExp(lowered.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"), "gi");
  let result = "";
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    result += `${escape(text.slice(last, match.index))}<mark>${escape(match[0])}</mark>`;
    last = match.index + match[0].length;
  }
  return result + escape(text.slice(last));
}
