// A shared generation (/shared/<token>): anyone with the link sees its output and prompt,
// in the tenant's brand, without signing in. An expired, wrong or withdrawn link says so.
import { useParams } from "react-router";
import { useTranslation } from "react-i18next";
import { useQuery } from "@tanstack/react-query";
import { ApiError } from "../../api/client";
import MediaView from "../../components/MediaView";
import { formatDate } from "../../i18n";
import { getShared } from "../gallery/api";
import "../viewer/viewer.css";

export default function Shared() {
  const { t, i18n } = useTranslation("shared");
  const { "*": token = "" } = useParams();
  const query = useQuery({
    queryKey: ["shared", token],
    queryFn: () => getShared(token),
    retry: (count, error) => !(error instanceof ApiError && error.status < 500) && count < 1,
  });
  if (query.isPending) return <p className="loading" role="status">{t("loading")}</p>;
  if (query.isError) {
    const gone = query.error instanceof ApiError && query.error.status === 404;
    return (
      <section className="shared card narrow">
        <h1>{gone ? t("gone.title") : t("error")}</h1>
        <p>{gone ? t("gone.body") : null}</p>
        {!gone ? <button type="button" onClick={() => void query.refetch()}>{t("retry")}</button> : null}
      </section>
    );
  }
  const shared = query.data;
  return (
    <section className="shared">
      <h1 className="viewer-title"><bdi>{shared.prompt || t("title")}</bdi></h1>
      <MediaView type={shared.type} outputs={shared.outputs} prompt={shared.prompt} />
      <p className="muted">{t("created", { date: formatDate(shared.created_at, i18n.language) })}</p>
      {shared.outputs[0] ? <a className="button primary" href={shared.outputs[0].url} download>{t("download")}</a> : null}
    </section>
  );
}
