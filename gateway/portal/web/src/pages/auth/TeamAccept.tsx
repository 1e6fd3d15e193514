import { useEffect, useRef, useState } from "react";
import { Link, useSearchParams } from "react-router";
import { useTranslation } from "react-i18next";
import { api, unwrap, type Schemas } from "../../api/client";
import { useSession } from "../../session";
import { errorText } from "./authErrors";
import "./auth.css";

/** /teams/accept?token=: the signed-in customer joins the team and switches to it. */
export default function TeamAccept() {
  const { t } = useTranslation("auth");
  const { setWorkspace } = useSession();
  const [params] = useSearchParams();
  const [team, setTeam] = useState<Schemas["TeamOut"] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const tried = useRef(false);

  useEffect(() => {
    if (tried.current) return;
    tried.current = true;
    const token = params.get("token") ?? "";
    void (async () => {
      try {
        if (!token) throw new Error("no token");
        const joined = unwrap(await api.POST("/v1/teams/invitations/accept", { body: { token } }));
        setTeam(joined);
        setWorkspace(joined.id);
      } catch (e) {
        setError(token ? errorText(t, e) : t("errors.invitation_not_found"));
      }
    })();
  }, [params, setWorkspace, t]);

  return (
    <section className="card narrow auth">
      <h1>{t("team.title")}</h1>
      {error ? <p role="alert" className="error">{error}</p> : null}
      {team ? (
        <>
          <p role="status">{t("team.joined", { name: team.name })}</p>
          <Link to="/studio/image" className="button-link">{t("team.open")}</Link>
        </>
      ) : null}
      {!team && !error ? <p role="status">{t("team.joining")}</p> : null}
    </section>
  );
}
