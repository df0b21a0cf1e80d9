/**
 * HTML mail made harmless for the reading pane.
 *
 * Three layers, so that one mistake is not enough (issue 8 "a hostile HTML mail runs
 * nothing and loads nothing remote until allowed"):
 * 1. DOMPurify removes scripts, event handlers, `javascript:` URLs, forms, frames, `<meta>`
 *    (refresh), `<link>`, `<base>`, SVG scripts; a hook removes remote URLs (images,
 *    backgrounds, CSS `url()` and `@import`) until the user allows them, and counts them.
 * 2. The document carries its own Content-Security-Policy (a `<meta>`), which narrows the
 *    page's: no script at all, images only from `data:`/`blob:` (and https once allowed),
 *    no fonts, media, forms or connections.
 * 3. The frame is sandboxed without `allow-scripts` (ReadingPane).
 */

import DOMPurify from "dompurify";

export interface SanitizedMail {
  /** A complete document for the frame's srcdoc. */
  document: string;
  /** How many remote resources were held back. */
  blocked: number;
}

const REMOTE = /^\s*(?:https?:)?\/\//i;
const CSS_URL = /url\(\s*(['"]?)(.*?)\1\s*\)/gi;
const CSS_IMPORT = /@import\s+[^;]+;?/gi;
const URL_ATTRIBUTES = ["src", "srcset", "background", "poster", "href", "xlink:href"];
const FORBID_TAGS = [
  "script", "form", "input", "button", "textarea", "select", "option", "meta", "link",
  "base", "iframe", "frame", "frameset", "object", "embed", "applet", "audio", "video",
  "source", "track", "portal",
];

export function frameContentSecurityPolicy(allowRemote: boolean): string {
  return [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    `img-src data: blob:${allowRemote ? " https:" : ""}`,
    "form-action 'none'",
  ].join("; ");
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A plain-text body, shown as text (nothing in it is markup). */
export function plainTextDocument(text: string): string {
  return wrap(`<pre style="white-space:pre-wrap;font-family:inherit;margin:0">${escapeHtml(text)}</pre>`, false);
}

function wrap(body: string, allowRemote: boolean): string {
  const policy = escapeHtml(frameContentSecurityPolicy(allowRemote));
  return (
    '<!doctype html><html><head><meta charset="utf-8">' +
    `<meta http-equiv="Content-Security-Policy" content="${policy}">` +
    "<style>body{margin:8px;font-family:system-ui,sans-serif;overflow-wrap:anywhere}img{max-width:100%;height:auto}</style>" +
    `</head><body>${body}</body></html>`
  );
}

export function sanitizeMail(
  html: string,
  { allowRemote, inline = new Map() }: { allowRemote: boolean; inline?: Map<string, string> },
): SanitizedMail {
  // A fresh instance per message: hooks are per instance, and this one's counter is ours.
  const purify = DOMPurify(window);
  let blocked = 0;

  const cleanCss = (css: string): string =>
    css.replace(CSS_IMPORT, () => {
      blocked += 1;
      return "";
    }).replace(CSS_URL, (whole, _quote: string, url: string) => {
      if (/^(data|blob):/i.test(url.trim())) return whole;
      if (REMOTE.test(url) && allowRemote && /^\s*https:/i.test(url)) return whole;
      blocked += 1;
      return "none";
    });

  purify.addHook("uponSanitizeElement", (node, data) => {
    if (data.tagName === "style" && node.textContent) node.textContent = cleanCss(node.textContent);
  });
  purify.addHook("afterSanitizeAttributes", (node) => {
    const element = node as Element;
    for (const name of URL_ATTRIBUTES) {
      const value = element.getAttribute(name);
      if (value === null) continue;
      if (name === "href" || name === "xlink:href") {
        if (element.tagName === "A" || element.tagName === "a") continue;
        if (!/^#/.test(value)) element.removeAttribute(name);
        continue;
      }
      if (/^\s*cid:/i.test(value)) {
        const url = inline.get(value.trim().slice(4).replace(/^<|>$/g, ""));
        if (url) element.setAttribute(name, url);
        else element.removeAttribute(name);
      } else if (/^\s*(data|blob):/i.test(value) && name !== "srcset") {
        continue;
      } else if (!(allowRemote && /^\s*https:/i.test(value))) {
        element.removeAttribute(name);
        element.setAttribute("data-hirondelle-blocked", "");
        blocked += 1;
      }
    }
    const style = element.getAttribute("style");
    if (style !== null) element.setAttribute("style", cleanCss(style));
    if (element.tagName.toLowerCase() === "a" && element.hasAttribute("href")) {
      element.setAttribute("target", "_blank");
      element.setAttribute("rel", "noopener noreferrer");
    }
  });

  const body = purify.sanitize(html, {
    FORBID_TAGS,
    FORBID_ATTR: ["action", "formaction", "ping"],
    ALLOW_DATA_ATTR: false,
    ADD_ATTR: ["target"],
    WHOLE_DOCUMENT: false,
  });
  return { document: wrap(body, allowRemote), blocked };
}
