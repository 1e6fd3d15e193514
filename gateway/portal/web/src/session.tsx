// Who is signed in (GET /v1/users/me) and which workspace they act in (personal or a team).
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { api, setCsrfToken, setTeam, type Schemas } from "./api/client";
import { changeLanguage } from "./i18n";

export type User = Schemas["UserOut"];

interface SessionState {
  /** undefined while loading, null when nobody is signed in. */
  user: User | null | undefined;
  teamId: string | null;
  setWorkspace(teamId: string | null): void;
  /** Call after a sign-in answered (SignedIn): stores the CSRF token and the user. */
  signedIn(answer: Schemas["SignedIn"]): void;
  signOut(): Promise<void>;
}

const SessionContext = createContext<SessionState | null>(null);
const WORKSPACE_KEY = "portal.workspace";

/** The service worker keeps what this user viewed for offline use: not for the next user. */
function clearUserCaches(): void {
  navigator.serviceWorker?.controller?.postMessage({ type: "clear-user-caches" });
}

/** The language the user saved on the server (UserOut.locale), when it has one. */
function applyUserLocale(user: User): void {
  if (user.locale === "en" || user.locale === "ar") void changeLanguage(user.locale);
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null | undefined>(undefined);
  const [teamId, setTeamId] = useState<string | null>(null);
  const queryClient = useQueryClient();

  useEffect(() => {
    // Also how a session opened by a link (magic link, portal session, GET /v1/auth/portal
    // with its cookie) is picked up: the cookie is there, this call finds the user.
    void api.GET("/v1/users/me").then(({ data }) => {
      if (data) {
        setCsrfToken(data.csrf_token);
        const stored = localStorage.getItem(WORKSPACE_KEY);
        setTeam(stored);
        setTeamId(stored);
        setUser(data.user);
      } else {
        setUser(null);
      }
    }, () => setUser(null));
  }, []);

  const setWorkspace = useCallback((id: string | null) => {
    setTeam(id);
    setTeamId(id);
    if (id) localStorage.setItem(WORKSPACE_KEY, id);
    else localStorage.removeItem(WORKSPACE_KEY);
    void queryClient.invalidateQueries();
  }, [queryClient]);

  const signedIn = useCallback((answer: Schemas["SignedIn"]) => {
    setCsrfToken(answer.csrf_token);
    // A new sign-in starts in the personal workspace (the last user's team is not theirs).
    setTeam(null);
    setTeamId(null);
    localStorage.removeItem(WORKSPACE_KEY);
    queryClient.clear();
    clearUserCaches();
    applyUserLocale(answer.user);
    setUser(answer.user);
  }, [queryClient]);

  const signOut = useCallback(async () => {
    await api.POST("/v1/auth/logout");
    setCsrfToken(null);
    setTeam(null);
    localStorage.removeItem(WORKSPACE_KEY);
    setTeamId(null);
    setUser(null);
    queryClient.clear();
    clearUserCaches();
  }, [queryClient]);

  return (
    <SessionContext.Provider value={{ user, teamId, setWorkspace, signedIn, signOut }}>
      {children}
    </SessionContext.Provider>
  );
}

export function useSession(): SessionState {
  const state = useContext(SessionContext);
  if (!state) throw new Error("useSession outside SessionProvider");
  return state;
}
