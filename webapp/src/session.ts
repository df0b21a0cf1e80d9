/**
 * The session API (sign-in, second factor, sign-out, password reset), as the contract with
 * identity-web defines it. Answers are mapped to outcomes the UI shows; one generic failure
 * for any wrong credential (the server never says which part failed, neither do we).
 */

export interface Account {
  address: string;
  name: string;
  accountId: string;
}

export interface SignedIn {
  kind: "signed-in";
  account: Account;
  csrfToken: string;
  webOffline: boolean;
}

export type SignInOutcome =
  | SignedIn
  | { kind: "second-factor"; methods: string[]; pending: string }
  | { kind: "invalid" }
  | { kind: "rate-limited"; retryAfter: number }
  | { kind: "unavailable" };

export type ResetOutcome =
  | { kind: "done" }
  | { kind: "invalid-token" }
  | { kind: "weak-password"; reason: "too-short" | "common"; minLength: number }
  | { kind: "unavailable" };

type Fetch = typeof fetch;

async function post(fetcher: Fetch, url: string, body: unknown, csrf?: string): Promise<Response | null> {
  try {
    return await fetcher(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", ...(csrf ? { "X-CSRF-Token": csrf } : {}) },
      body: JSON.stringify(body),
    });
  } catch {
    return null;
  }
}

async function outcome(response: Response | null): Promise<SignInOutcome> {
  if (response === null || response.status >= 500) return { kind: "unavailable" };
  if (response.status === 429) {
    let retryAfter = Number(response.headers.get("Retry-After") ?? "");
    try {
      const body = (await response.json()) as { retryAfter?: number };
      if (typeof body.retryAfter === "number") retryAfter = body.retryAfter;
    } catch {
      // The header alone is enough.
    }
    return { kind: "rate-limited", retryAfter: Number.isFinite(retryAfter) && retryAfter > 0 ? Math.ceil(retryAfter) : 60 };
  }
  if (!response.ok) return { kind: "invalid" };
  const body = (await response.json()) as Record<string, unknown>;
  if (body.status === "second-factor") {
    return { kind: "second-factor", methods: body.methods as string[], pending: String(body.pending) };
  }
  if (body.status === "signed-in") {
    return {
      kind: "signed-in",
      account: body.account as Account,
      csrfToken: String(body.csrfToken),
      webOffline: body.webOffline === true,
    };
  }
  return { kind: "invalid" };
}

export class SessionApi {
  constructor(private readonly fetcher: Fetch = (input, init) => fetch(input, init)) {}

  async signIn(address: string, password: string, staySignedIn: boolean): Promise<SignInOutcome> {
    return outcome(await post(this.fetcher, "/api/session", { address, password, staySignedIn }));
  }

  async secondFactor(
    pending: string,
    proof: { totp: string } | { recoveryCode: string } | { webauthn: unknown },
  ): Promise<SignInOutcome> {
    return outcome(await post(this.fetcher, "/api/session/second-factor", { pending, ...proof }));
  }

  async webauthnOptions(pending: string): Promise<unknown | null> {
    const response = await post(this.fetcher, "/api/session/webauthn/options", { pending });
    return response?.ok ? response.json() : null;
  }

  /** The current session, or null when signed out; throws when the server is unreachable. */
  async current(): Promise<SignedIn | null> {
    const response = await this.fetcher("/api/session", { credentials: "same-origin" });
    if (response.status === 401) return null;
    if (!response.ok) throw new Error(`session: ${response.status}`);
    const body = (await response.json()) as { account: Account; csrfToken: string; webOffline: boolean };
    return { kind: "signed-in", account: body.account, csrfToken: body.csrfToken, webOffline: body.webOffline === true };
  }

  async signOut(csrf: string): Promise<void> {
    try {
      await this.fetcher("/api/session", {
        method: "DELETE",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf },
      });
    } catch {
      // Offline: the local copy is wiped anyway; the cookie is a session cookie unless
      // "stay signed in" was chosen, and the server session expires on its own.
    }
  }

  async resetPassword(token: string, password: string): Promise<ResetOutcome> {
    const response = await post(this.fetcher, "/api/password-reset", { token, password });
    if (response === null || response.status >= 500) return { kind: "unavailable" };
    if (response.status === 204) return { kind: "done" };
    const body = (await response.json().catch(() => ({}))) as {
      error?: string;
      reason?: "too-short" | "common";
      minLength?: number;
    };
    if (body.error === "weak-password") {
      return { kind: "weak-password", reason: body.reason ?? "common", minLength: body.minLength ?? 0 };
    }
    return { kind: "invalid-token" };
  }
}
