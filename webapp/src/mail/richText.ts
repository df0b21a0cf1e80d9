/**
 * Rich text written in the composer: the HTML it may contain, the plain-text alternative
 * generated from it, and the conversions when the user switches between rich and plain.
 *
 * A rich message is sent as multipart/alternative (RFC 2046 §5.1.4; RFC 8621 §4.6 Email/set
 * with htmlBody and textBody), the plain part generated here so that text-only readers see
 * the same words, lists and links. What leaves the composer is sanitised with DOMPurify to a
 * small allowlist first: whatever was pasted or quoted, no script, handler, form, frame,
 * style or remote image goes out (nor loads in the editor, whose page allows https images).
 */

import DOMPurify from "dompurify";

const ALLOWED_TAGS = [
  "p", "div", "br", "span", "b", "strong", "i", "em", "u", "s", "strike", "sub", "sup",
  "ul", "ol", "li", "a", "blockquote", "pre", "code", "h1", "h2", "h3", "h4", "h5", "h6",
  "hr", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption",
];
const ALLOWED_ATTR = ["href", "type", "colspan", "rowspan"];
/** Links a message may carry: the web and mail addresses, nothing that runs. */
const SAFE_LINK = /^(?:https?:|mailto:)/i;

/** The composed HTML reduced to the allowlist (links only to http(s) and mailto). */
export function sanitizeComposed(html: string): string {
  const purify = DOMPurify(window);
  purify.addHook("afterSanitizeAttributes", (node) => {
    const element = node as Element;
    const href = element.getAttribute("href");
    if (href !== null && !SAFE_LINK.test(href.trim())) element.removeAttribute("href");
  });
  return purify.sanitize(html, { ALLOWED_TAGS, ALLOWED_ATTR, ALLOW_DATA_ATTR: false, ALLOW_ARIA_ATTR: false });
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/**
 * Plain text as HTML: paragraphs at blank lines, line breaks kept, "> " quoted lines
 * (RFC 3676 §4.5 quote depth) as nested blockquotes.
 */
export function textToHtml(text: string): string {
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  const out: string[] = [];
  let index = 0;
  const depth = (line: string) => /^(>\s?)*/.exec(line)?.[0].replace(/[^>]/g, "").length ?? 0;
  const strip = (line: string) => line.replace(/^>\s?/, "");
  while (index < lines.length) {
    const line = lines[index] ?? "";
    if (depth(line) > 0) {
      const quoted: string[] = [];
      while (index < lines.length && depth(lines[index] ?? "") > 0) quoted.push(strip(lines[index++] ?? ""));
      out.push(`<blockquote type="cite">${textToHtml(quoted.join("\n"))}</blockquote>`);
      continue;
    }
    const paragraph: string[] = [];
    while (index < lines.length && (lines[index] ?? "") !== "" && depth(lines[index] ?? "") === 0) {
      paragraph.push(escapeHtml(lines[index++] ?? ""));
    }
    if (paragraph.length) out.push(`<p>${paragraph.join("<br>")}</p>`);
    else {
      // A blank line: an empty paragraph only when there are several in a row, so that
      // "a\n\nb" is two paragraphs and the room left above a quote stays.
      index++;
      if ((lines[index] ?? "x") === "" || out.length === 0) out.push("<p><br></p>");
    }
  }
  return out.join("");
}

const BLOCKS = new Set([
  "P", "DIV", "UL", "OL", "LI", "BLOCKQUOTE", "PRE", "H1", "H2", "H3", "H4", "H5", "H6", "HR", "TABLE", "TR",
]);
/** Blocks followed by a blank line; the others (a DIV is a line in Chromium's editor) by none. */
const PARAGRAPHS = new Set(["P", "UL", "OL", "BLOCKQUOTE", "PRE", "H1", "H2", "H3", "H4", "H5", "H6", "HR", "TABLE"]);

/**
 * The plain-text alternative of composed HTML: paragraphs separated by a blank line, a
 * line per DIV (what Enter makes in the editor), lists as "- " and "1. ", links as
 * "text <url>", blockquotes as "> " lines.
 */
export function htmlToText(html: string): string {
  const template = document.createElement("template");
  template.innerHTML = sanitizeComposed(html);
  const text = blockText(template.content).replace(/[ \t]+$/gm, "").replace(/\n{3,}/g, "\n\n");
  return text.replace(/^\n+/, "").replace(/\s+$/, "");
}

/** The text of a node's children, each block ending with a newline. */
function blockText(parent: ParentNode): string {
  let out = "";
  let inline = "";
  const flush = () => {
    if (inline.trim() !== "" || inline.includes("\n")) out += `${inline.replace(/^ +/, "").replace(/\n$/, "")}\n`;
    inline = "";
  };
  for (const node of Array.from(parent.childNodes)) {
    if (node.nodeType === Node.TEXT_NODE) {
      inline += (node.textContent ?? "").replace(/\s+/g, " ");
      continue;
    }
    if (!(node instanceof Element)) continue;
    const tag = node.tagName;
    if (tag === "BR") {
      inline += "\n";
    } else if (tag === "A") {
      const label = inlineText(node);
      const href = node.getAttribute("href") ?? "";
      const target = href.replace(/^mailto:/i, "");
      inline += href && target !== label.trim() ? `${label} <${target}>` : label;
    } else if (!BLOCKS.has(tag)) {
      inline += blockText(node).replace(/\n$/, "");
    } else {
      flush();
      if (tag === "UL" || tag === "OL") {
        let number = 1;
        for (const item of Array.from(node.children)) {
          if (item.tagName !== "LI") continue;
          const marker = tag === "OL" ? `${number++}. ` : "- ";
          const lines = blockText(item).replace(/\n+$/, "").split("\n");
          out += `${marker}${lines.join(`\n${" ".repeat(marker.length)}`)}\n`;
        }
      } else if (tag === "BLOCKQUOTE") {
        const lines = blockText(node).replace(/\n+$/, "").split("\n");
        out += `${lines.map((line) => (line === "" ? ">" : line.startsWith(">") ? `>${line}` : `> ${line}`)).join("\n")}\n`;
      } else if (tag === "HR") {
        out += "----\n";
      } else if (tag === "PRE") {
        out += `${(node.textContent ?? "").replace(/\n$/, "")}\n`;
      } else {
        const body = blockText(node);
        out += body === "" && tag === "DIV" ? "" : body;
      }
      if (PARAGRAPHS.has(tag)) out += "\n";
    }
  }
  flush();
  return out;
}

function inlineText(node: Element): string {
  return (node.textContent ?? "").replace(/\s+/g, " ");
}

/** The original message quoted in a rich reply: its HTML made safe, or its text as HTML. */
export function quotedHtml(intro: string, original: { html: string | null; text: string }): string {
  const body = original.html !== null ? sanitizeComposed(original.html) : textToHtml(original.text);
  return `<p><br></p><p>${escapeHtml(intro)}</p><blockquote type="cite">${body}</blockquote>`;
}

/** A signature appended to rich text: the identity's HTML one, else its text one. */
export function signatureHtml(identity: { textSignature: string; htmlSignature: string }): string {
  if (identity.htmlSignature.trim()) return `<p>-- </p>${sanitizeComposed(identity.htmlSignature)}`;
  if (identity.textSignature.trim()) return `<p>-- </p>${textToHtml(identity.textSignature)}`;
  return "";
}
