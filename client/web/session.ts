const STORAGE_KEY = "turnqueue.token";

/** Who a token says it is; read for display only (the server verifies every call). */
export interface Identity {
  sub: string;
  workspace: string;
  role: string;
}

export function identityOf(token: string): Identity | null {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.sub === "string" ? { sub: payload.sub, workspace: String(payload.ws), role: String(payload.role) } : null;
  } catch {
    return null;
  }
}

/**
 * The token to start with: one handed over in the URL (`#token=…`, removed from the
 * address bar at once), the one saved on this device, or, on the embedded default bound to
 * loopback, the local user's token the server offers at /local-token.
 */
export async function initialToken(): Promise<string | null> {
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromUrl) {
    history.replaceState(null, "", location.pathname + location.search);
    saveToken(fromUrl);
    return fromUrl;
  }
  const saved = localStorage.getItem(STORAGE_KEY);
  // "" marks a deliberate sign-out: do not sign the local user back in behind their back.
  if (saved !== null) return saved || null;
  return localToken();
}

export async function localToken(): Promise<string | null> {
  const response = await fetch("/local-token").catch(() => null);
  if (!response?.ok) return null;
  const body = (await response.json().catch(() => null)) as { token?: unknown } | null;
  return typeof body?.token === "string" ? body.token : null;
}

export const saveToken = (token: string) => localStorage.setItem(STORAGE_KEY, token);
export const signOut = () => localStorage.setItem(STORAGE_KEY, "");
