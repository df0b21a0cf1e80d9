// @vitest-environment jsdom
import { describe, expect, it } from "vitest";

import { htmlToText, quotedHtml, sanitizeComposed, signatureHtml, textToHtml } from "./richText";

describe("sanitising what the composer sends", () => {
  it("keeps formatting, lists, quotes and web or mail links", () => {
    const html =
      '<p><b>Bold</b> <i>it</i> <u>under</u></p><ul><li>one</li></ul><ol><li>two</li></ol>' +
      '<blockquote type="cite"><p>said</p></blockquote><p><a href="https://example.org/x">site</a> <a href="mailto:a@b.org">mail</a></p>';
    expect(sanitizeComposed(html)).toBe(html);
  });

  it("removes scripts, handlers, styles, forms, frames, images and links that run", () => {
    const clean = sanitizeComposed(
      '<p onclick="x()" style="background:url(https://evil.test/a)">hi</p><script>alert(1)</script>' +
        '<img src="https://evil.test/p.png"><form action="https://evil.test"><input></form>' +
        '<iframe src="https://evil.test"></iframe><a href="javascript:alert(1)">j</a><a href="data:text/html,x">d</a>' +
        '<svg><script>alert(2)</script></svg><style>p{}</style>',
    );
    expect(clean).toBe("<p>hi</p><a>j</a><a>d</a>");
  });
});

describe("the plain-text alternative", () => {
  it("writes paragraphs, lists, links and quotes as text", () => {
    const html =
      '<p>Hello <b>world</b>,</p><ul><li>one</li><li>two</li></ul><ol><li>first</li><li>second</li></ol>' +
      '<p>See <a href="https://example.org/">the site</a> or <a href="mailto:bob@example.test">bob@example.test</a>.</p>' +
      '<blockquote type="cite"><p>Earlier words</p><blockquote><p>older</p></blockquote></blockquote><p>Bye</p>';
    expect(htmlToText(html)).toBe(
      "Hello world,\n\n- one\n- two\n\n1. first\n2. second\n\n" +
        "See the site <https://example.org/> or bob@example.test.\n\n" +
        "> Earlier words\n>\n>> older\n\nBye",
    );
  });

  it("reads what Chromium's editor makes: a DIV per line, <div><br></div> for an empty one", () => {
    expect(htmlToText("first<div>second</div><div><br></div><div>third<br></div>")).toBe("first\nsecond\n\nthird");
    expect(htmlToText("a<br>b")).toBe("a\nb");
    expect(htmlToText("")).toBe("");
  });
});

describe("switching between plain and rich", () => {
  it("turns text into paragraphs, line breaks and nested quotes, escaping markup", () => {
    expect(textToHtml("Hi <b>\nthere\n\nNext & last")).toBe("<p>Hi &lt;b&gt;<br>there</p><p>Next &amp; last</p>");
    expect(textToHtml("Bob wrote:\n> one\n> > two")).toBe(
      '<p>Bob wrote:</p><blockquote type="cite"><p>one</p><blockquote type="cite"><p>two</p></blockquote></blockquote>',
    );
  });

  it("comes back to the same text after a round trip", () => {
    for (const text of ["One line", "Two\nlines", "Para one\n\nPara two", "Intro:\n\n> quoted\n> more", "x & <y>"]) {
      expect(htmlToText(textToHtml(text))).toBe(text);
    }
  });

  it("keeps generated texts word for word through a round trip", () => {
    // A small deterministic generator (no property-testing library in the bundle's deps):
    // lines of words and markup characters, single and double line breaks.
    let seed = 42;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const words = ["a", "mot", "<b>", "&amp;", "x>y", "\"q\"", "été", "1."];
    for (let run = 0; run < 60; run++) {
      const paragraphs = Array.from({ length: 1 + next(3) }, () =>
        Array.from({ length: 1 + next(3) }, () => Array.from({ length: 1 + next(4) }, () => words[next(words.length)]).join(" ")).join("\n"),
      );
      const text = paragraphs.join("\n\n");
      expect(htmlToText(textToHtml(text))).toBe(text);
    }
  });
});

describe("quoting and signatures", () => {
  it("quotes the original's HTML made safe, or its text, under an intro", () => {
    const quoted = quotedHtml("Bob <bob@example.test>:", { html: '<p>Hi<script>x</script><img src="https://t.test/p"></p>', text: "" });
    expect(quoted).toBe('<p><br></p><p>Bob &lt;bob@example.test&gt;:</p><blockquote type="cite"><p>Hi</p></blockquote>');
    expect(quotedHtml("Bob:", { html: null, text: "plain\nwords" })).toBe(
      '<p><br></p><p>Bob:</p><blockquote type="cite"><p>plain<br>words</p></blockquote>',
    );
    expect(htmlToText(quotedHtml("Bob:", { html: null, text: "plain" }))).toBe("Bob:\n\n> plain");
  });

  it("uses the HTML signature, else the text one, else none", () => {
    expect(signatureHtml({ textSignature: "Alice", htmlSignature: "<b>Alice</b>" })).toBe("<p>-- </p><b>Alice</b>");
    expect(signatureHtml({ textSignature: "Alice\nSales", htmlSignature: "" })).toBe("<p>-- </p><p>Alice<br>Sales</p>");
    expect(signatureHtml({ textSignature: " ", htmlSignature: "" })).toBe("");
  });
});
