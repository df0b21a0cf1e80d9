/**
 * WebAuthn assertion for the second factor (W3C WebAuthn Level 3): the server's options JSON
 * (py_webauthn's options_to_json) to a credential JSON the server verifies. Uses the
 * browser's own JSON helpers when present, base64url by hand otherwise.
 */

function fromBase64Url(text: string): ArrayBuffer {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return bytes.buffer;
}

function toBase64Url(buffer: ArrayBuffer | null): string | null {
  if (buffer === null) return null;
  let text = "";
  for (const byte of new Uint8Array(buffer)) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

interface RequestOptionsJson {
  challenge: string;
  timeout?: number;
  rpId?: string;
  allowCredentials?: { id: string; type: "public-key"; transports?: AuthenticatorTransport[] }[];
  userVerification?: UserVerificationRequirement;
}

export function webauthnAvailable(): boolean {
  return typeof window !== "undefined" && "PublicKeyCredential" in window && !!navigator.credentials;
}

/** Ask the authenticator; returns the credential as JSON, or null if the user cancelled. */
export async function assert(optionsJson: unknown): Promise<unknown | null> {
  const json = optionsJson as RequestOptionsJson;
  const native = (PublicKeyCredential as unknown as { parseRequestOptionsFromJSON?: (o: unknown) => PublicKeyCredentialRequestOptions })
    .parseRequestOptionsFromJSON;
  const publicKey: PublicKeyCredentialRequestOptions = native
    ? native(json)
    : {
        challenge: fromBase64Url(json.challenge),
        ...(json.timeout !== undefined ? { timeout: json.timeout } : {}),
        ...(json.rpId !== undefined ? { rpId: json.rpId } : {}),
        ...(json.userVerification !== undefined ? { userVerification: json.userVerification } : {}),
        allowCredentials: (json.allowCredentials ?? []).map((c) => ({
          id: fromBase64Url(c.id),
          type: c.type,
          ...(c.transports ? { transports: c.transports } : {}),
        })),
      };
  let credential: Credential | null;
  try {
    credential = await navigator.credentials.get({ publicKey });
  } catch {
    return null;
  }
  if (!(credential instanceof PublicKeyCredential)) return null;
  const withJson = credential as PublicKeyCredential & { toJSON?: () => unknown };
  if (typeof withJson.toJSON === "function") return withJson.toJSON();
  const response = credential.response as AuthenticatorAssertionResponse;
  return {
    id: credential.id,
    rawId: toBase64Url(credential.rawId),
    type: credential.type,
    response: {
      clientDataJSON: toBase64Url(response.clientDataJSON),
      authenticatorData: toBase64Url(response.authenticatorData),
      signature: toBase64Url(response.signature),
      userHandle: toBase64Url(response.userHandle),
    },
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}
