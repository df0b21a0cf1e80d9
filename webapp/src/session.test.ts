import { describe, expect, it } from "vitest";

import { SessionApi } from "./session";

function answering(status: number, body: unknown, headers: Record<string, string> = {}) {
  const seen: { url: string; init: RequestInit | undefined }[] = [];
  const api = new SessionApi(async (input, init) => {
    seen.push({ url: String(input), init });
    return new Response(status === 204 ? null : JSON.stringify(body), { status, headers });
  });
  return { api, seen };
}

describe("SessionApi", () => {
  it("signs in and sends what the contract asks", async () => {
    const { api, seen } = answering(200, {
      status: "signed-in",
      account: { address: "alice@example.test", name: "Alice", accountId: "a1" },
      csrfToken: "c",
      webOffline: false,
    });
    const result = await api.signIn("alice@example.test", "pw", false);
    expect(result).toEqual({
      kind: "signed-in",
      account: { address: "alice@example.test", name: "Alice", accountId: "a1" },
      csrfToken: "c",
      webOffline: false,
    });
    expect(seen[0]?.url).toBe("/api/session");
    expect(JSON.parse(String(seen[0]?.init?.body))).toEqual({ address: "alice@example.test", password: "pw", staySignedIn: false });
  });

  it("asks for the second factor with the pending token", async () => {
    const { api } = answering(200, { status: "second-factor", methods: ["totp", "recovery"], pending: "p1" });
    expect(await api.signIn("a@b.test", "pw", true)).toEqual({ kind: "second-factor", methods: ["totp", "recovery"], pending: "p1" });
  });

  it("maps refusals: one generic failure, rate limits with their delay, an unreachable server", async () => {
    expect(await answering(401, { error: "invalid-credentials" }).api.signIn("a", "b", false)).toEqual({ kind: "invalid" });
    expect(
      await answering(429, { error: "rate-limited", retryAfter: 42 }, { "Retry-After": "42" }).api.signIn("a", "b", false),
    ).toEqual({ kind: "rate-limited", retryAfter: 42 });
    expect(await answering(502, {}).api.signIn("a", "b", false)).toEqual({ kind: "unavailable" });
    const offline = new SessionApi(async () => {
      throw new TypeError("Failed to fetch");
    });
    expect(await offline.signIn("a", "b", false)).toEqual({ kind: "unavailable" });
  });

  it("maps the password-reset answers", async () => {
    expect(await answering(204, null).api.resetPassword("t", "p")).toEqual({ kind: "done" });
    expect(await answering(400, { error: "invalid-token" }).api.resetPassword("t", "p")).toEqual({ kind: "invalid-token" });
    expect(
      await answering(400, { error: "weak-password", reason: "too-short", minLength: 12 }).api.resetPassword("t", "p"),
    ).toEqual({ kind: "weak-password", reason: "too-short", minLength: 12 });
  });

  it("reads the current session or none", async () => {
    expect(await answering(401, {}).api.current()).toBeNull();
    const current = await answering(200, {
      account: { address: "a@b.test", name: "A", accountId: "a1" },
      csrfToken: "x",
      webOffline: true,
    }).api.current();
    expect(current?.webOffline).toBe(true);
  });
});
