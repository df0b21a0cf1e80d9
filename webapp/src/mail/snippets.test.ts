import { describe, expect, it } from "vitest";

import { localSnippet, snippetRuns } from "./snippets";

describe("search snippets", () => {
  it("split a server snippet into plain and marked runs, unescaped", () => {
    expect(snippetRuns("the <mark>budget</mark> &amp; <mark>plan</mark> &lt;b&gt;")).toEqual([
      { text: "the ", marked: false },
      { text: "budget", marked: true },
      { text: " & ", marked: false },
      { text: "plan", marked: true },
      { text: " <b>", marked: false },
    ]);
  });

  it("show any other markup as text", () => {
    const runs = snippetRuns('<img src=x onerror="alert(1)"><mark>x</mark>');
    expect(runs[0]).toEqual({ text: '<img src=x onerror="alert(1)">', marked: false });
    expect(runs[1]).toEqual({ text: "x", marked: true });
  });

  it("make local snippets in the same form", () => {
    const snippet = localSnippet("Budget <2027> and the budget plan", ["budget"]);
    expect(snippet).toBe("<mark>Budget</mark> &#60;2027&#62; and the <mark>budget</mark> plan");
    expect(snippetRuns(snippet).filter((r) => r.marked).map((r) => r.text)).toEqual(["Budget", "budget"]);
    expect(snippetRuns(localSnippet("a.b (c)", ["(c"])).filter((r) => r.marked)).toEqual([{ text: "(c", marked: true }]);
  });
});
