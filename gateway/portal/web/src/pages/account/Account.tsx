import { useState } from "react";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { changeLanguage, formatDate, LANGUAGES, type Language } from "../../i18n";
import { useInstallPrompt } from "../../pwa/install";
import { pushSupported, subscribeToPush, unsubscribeFromPush, currentSubscription } from "../../pwa/push";
import { useSession } from "../../session";
import "./account.css";

/** Language: applied at once, saved on the server (PATCH /v1/users/me) so it follows the
 * user to other devices and their mails; kept on this device when the server cannot keep it. */
function LanguageSection() {
  const { t, i18n } = useTranslation("account");
  const [saved, setSaved] = useState<"server" | "device" | null>(null);
  async function choose(lang: Language) {
    await changeLanguage(lang);
    const answer = await api.PATCH("/v1/users/me", { body: { locale: lang } }).catch(() => null);
    setSaved(answer?.data ? "server" : "device");
  }
  return (
    <section className="card account-section" aria-labelledby="language-heading">
      <h2 id="language-heading">{t("language.title")}</h2>
      <fieldset className="choice-group">
        <legend className="visually-hidden">{t("language.title")}</legend>
        {LANGUAGES.map((lang) => (
          <label key={lang} className="choice" lang={lang}>
            <input type="radio" name="language" value={lang} checked={i18n.language === lang}
                   onChange={() => void choose(lang)} />
            {t(`language.${lang}`)}
          </label>
        ))}
      </fieldset>
      <p className="muted" role="status">{saved ? t(`language.saved_${saved}`) : ""}</p>
    </section>
  );
}

function describeAgent(agent: string): string {
  const browser = /Edg\//.test(agent) ? "Edge" : /Chrome\//.test(agent) ? "Chrome"
    : /Firefox\//.test(agent) ? "Firefox" : /Safari\//.test(agent) ? "Safari" : "";
  const os = /Android/.test(agent) ? "Android" : /iPhone|iPad/.test(agent) ? "iOS"
    : /Windows/.test(agent) ? "Windows" : /Mac OS/.test(agent) ? "macOS" : /Linux/.test(agent) ? "Linux" : "";
  return [browser, os].filter(Boolean).join(" · ");
}

/** The user's sessions (GET /v1/sessions); any but this one can be signed out. */
function SessionsSection() {
  const { t, i18n } = useTranslation("account");
  const queryClient = useQueryClient();
  const sessions = useQuery({
    queryKey: ["sessions"],
    queryFn: async () => unwrap(await api.GET("/v1/sessions", { params: { query: { limit: 50 } } })).data,
  });
  const revoke = useMutation({
    mutationFn: async (id: string) => unwrap(await api.DELETE("/v1/sessions/{session_id}",
      { params: { path: { session_id: id } } })),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["sessions"] }),
  });
  const live = (sessions.data ?? []).filter((s: Schemas["SessionOut"]) => !s.revoked_at);
  return (
    <section className="card account-section" aria-labelledby="sessions-heading">
      <h2 id="sessions-heading">{t("sessions.title")}</h2>
      {sessions.isError ? <p role="alert" className="error">{t("sessions.error")}</p> : null}
      <ul className="session-list">
        {live.map((s) => (
          <li key={s.id} className="session-row">
            <div>
              <strong>{describeAgent(s.user_agent) || t("sessions.unknown_device")}</strong>
              {s.current ? <span className="tag">{t("sessions.current")}</span> : null}
              <div className="muted small">
                {t("sessions.last_seen", { when: formatDate(s.last_seen_at, i18n.language) })}
                {s.ip_address ? <> · <bdi>{s.ip_address}</bdi></> : null}
              </div>
            </div>
            {s.current ? null : (
              <button type="button" onClick={() => revoke.mutate(s.id)} disabled={revoke.isPending}>
                {t("sessions.revoke")}
              </button>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Install as an app (when the browser offers it) and notifications when a generation ends. */
function DeviceSection() {
  const { t } = useTranslation("account");
  const install = useInstallPrompt();
  const [push, setPush] = useState<string | null>(null);
  const subscribed = useQuery({ queryKey: ["push-subscription"], queryFn: async () => !!(await currentSubscription()),
                                enabled: pushSupported() });
  const queryClient = useQueryClient();
  async function togglePush() {
    if (subscribed.data) {
      await unsubscribeFromPush();
      setPush("stopped");
    } else {
      setPush(await subscribeToPush());
    }
    await queryClient.invalidateQueries({ queryKey: ["push-subscription"] });
  }
  return (
    <section className="card account-section" aria-labelledby="device-heading">
      <h2 id="device-heading">{t("device.title")}</h2>
      <div className="device-actions">
        {install ? (
          <button type="button" className="primary" onClick={() => void install()}>{t("device.install")}</button>
        ) : <p className="muted">{t("device.install_unavailable")}</p>}
        {pushSupported() ? (
          <button type="button" onClick={() => void togglePush()} aria-pressed={!!subscribed.data}>
            {subscribed.data ? t("device.push_off") : t("device.push_on")}
          </button>
        ) : null}
      </div>
      <p className="muted" role="status">{push ? t(`device.push_${push}`) : ""}</p>
    </section>
  );
}

export default function Account() {
  const { t } = useTranslation("account");
  const { user } = useSession();
  return (
    <div className="account">
      <h1>{t("title")}</h1>
      {user?.email ? <p className="muted"><bdi>{user.email}</bdi></p> : null}
      <LanguageSection />
      <DeviceSection />
      <SessionsSection />
    </div>
  );
}
