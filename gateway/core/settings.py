"""Settings read from the environment (API.md, "Settings"), validated once at start.

Every bad value is reported in one `SettingsError` that lists one line per variable, so an
operator fixes them all in one go instead of one restart per typo.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec

from plugins.vocabulary import MEDIA_TYPES

_EMBEDDED_DB: Final = "sqlite+aiosqlite:///./mediahub.db"
_MIN_SECRET: Final = 32


class SettingsError(Exception):
    """Raised at start when one or more environment variables are invalid."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))


#: Fields never shown in `repr(settings)`.
_SECRET_FIELDS: Final = frozenset({"secret_key", "admin_token", "stripe_api_key",
                                   "stripe_webhook_secret", "smtp_password",
                                   "vapid_private_key", "metrics_token"})


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    # Each setting is read from MEDIAHUB_<NAME IN UPPER CASE>; its `#:` comment is its
    # description in docs/configuration.md (`reference_markdown`, below).

    #: SQLAlchemy URL of the database: `sqlite+aiosqlite:///FILE` (embedded) or
    #: `postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DATABASE` (TLS: `?ssl=require` or
    #: `?ssl=verify-full`, asyncpg's parameter; `sslmode=` is refused).
    database_url: str = _EMBEDDED_DB
    #: Check each pooled connection with a round trip before use. Off: it costs round trips
    #: on every transaction, and without it a database restart fails only the statements on
    #: connections that were already open (the pool then reconnects).
    database_pre_ping: bool = False
    #: Connections each process keeps open to PostgreSQL (SQLite uses its own pool).
    database_pool_size: int = 20
    #: Connections a PostgreSQL pool may open beyond `MEDIAHUB_DATABASE_POOL_SIZE` under load
    #: (closed again when returned).
    database_max_overflow: int = 20
    #: How long a request waits for a free PostgreSQL connection before it answers `503`
    #: (`database_busy`, with `Retry-After`) instead of queueing without bound.
    database_pool_timeout_s: int = 5
    #: The time all input URLs of one submit (`image_url`, `mask_url`, `sample_urls`) may
    #: take together, fetched at once; past it the submit answers `422 input_fetch_timeout`
    #: and nothing is reserved.
    input_fetch_deadline_s: int = 30
    #: Valkey or Redis (`redis://`, `rediss://`, `valkey://`, `valkeys://`, `unix://`) for the
    #: SAQ queues, rate limits, the result cache and coalescing. Unset: all of them run in
    #: process (embedded mode).
    valkey_url: str | None = None
    #: Where media is stored: `file://DIR` (served by signed links) or `s3://BUCKET[/prefix]`.
    storage_url: str = "file://./media"
    #: Endpoint of an S3-compatible store (MinIO, ...); unset: AWS. Credentials and region come
    #: from the standard `AWS_*` variables. Output links are presigned against it, so clients
    #: must be able to reach it too.
    s3_endpoint_url: str | None = None
    #: Base URL of a CDN whose origin is the media bucket (`s3://` storage only), e.g.
    #: `https://media.example.com`. Set: tenants that allow public links (`media.public_links`)
    #: get permanent, unsigned `{base}/{object key}` links; everyone else keeps signed ones.
    media_cdn_base_url: str | None = None
    #: Operator token for `/admin/v1`, at least 16 characters. Unset: the admin API refuses
    #: everyone (`mediahub demo` sets one and prints it).
    admin_token: str | None = None
    #: Signs media links and derives webhook secrets and the key that seals tenants' provider
    #: keys; at least 32 characters. Unset: embedded mode generates one once into
    #: `<database>.secret` (mode 0600); otherwise required. Changing it voids signed links,
    #: webhook secrets and stored provider keys.
    secret_key: bytes = b""
    #: Base of signed local media links and of the pages Stripe sends buyers back to.
    public_base_url: str = "http://127.0.0.1:8000"
    #: Lifetime of signed output URLs, seconds; an expired link answers 403.
    media_url_ttl_s: int = 3600
    #: A reservation not settled within this many seconds is voided by the sweeper and its
    #: generation fails (`reservation_expired`).
    reservation_timeout_s: int = 900
    #: Prefix of the SAQ queues (`<prefix>:<media type>`, `<prefix>:webhooks`) and of the
    #: Valkey keys of the result cache and coalescing.
    queue_prefix: str = "mediahub"
    #: Jobs one process runs at once per queue when `MEDIAHUB_QUEUE_CONCURRENCY` names neither
    #: the media type nor `default`.
    worker_concurrency: int = 4
    #: Plugins not to load, comma-separated: a built-in's module (`plugins.openai`) or a third
    #: party's entry-point name.
    disabled_plugins: tuple[str, ...] = ()
    #: The providers a tenant's generations may route to when its routing policy sets no
    #: `allowed_providers`, comma-separated names (`*`: every installed provider, the offline
    #: engines included). Empty: every remote provider, so the offline (local) engines serve
    #: only tenants or requests that choose them.
    default_allowed_providers: tuple[str, ...] = ()
    #: The operator's markup over provider cost, per media type (`default` for the rest).
    #: In basis points, e.g. `default=3000,video=2000`; a type not set: 3000 (30 %).
    platform_markup_bps: dict[str, int] = msgspec.field(default_factory=dict)
    #: Stripe secret key for credit purchases. Unset: purchases answer 503
    #: (`stripe_not_configured`).
    stripe_api_key: str | None = None
    #: Signing secret (`whsec_...`) of the Stripe webhook endpoint aimed at
    #: `/v1/webhooks/stripe`. Unset: Stripe's events answer 503, so Stripe retries them.
    stripe_webhook_secret: str | None = None
    #: Stripe API base URL; unset: Stripe's own (tests point it at a local fake).
    stripe_base_url: str | None = None
    #: Requests per minute a tenant sustains (GCRA; 0 = no limit). A tenant's `rate_limits`
    #: overrides this and each limit below.
    rate_limit_requests_per_minute: int = 6000
    #: Requests a tenant may make at once before its sustained rate applies; 0 = no limit.
    rate_limit_burst: int = 1000
    #: Requests per minute one API key sustains; 0 = no limit.
    rate_limit_key_requests_per_minute: int = 3000
    #: Requests one API key may make at once; 0 = no limit.
    rate_limit_key_burst: int = 600
    #: Generations queued or running at once per tenant, per media type (`default` for the
    #: rest); 0 or absent = no limit.
    rate_limit_concurrent_jobs: dict[str, int] = msgspec.field(default_factory=dict)
    #: What a tenant's wallet may reserve per UTC day, millicredits; 0 = no cap.
    rate_limit_daily_spend_cap_mc: int = 0
    #: How long a finished result answers identical requests, unless the tenant's cache
    #: policy says otherwise; 0 turns the result cache off for tenants without a `ttl_s`.
    cache_ttl_s: int = 86400
    #: The port the gateway fetches `http://<host>:<port>/.well-known/mediahub-verification`
    #: on to verify a tenant's custom domain (80 in production; tests point it at a server of
    #: their own).
    domain_verification_port: int = 80
    #: Networks the egress client may reach although they are not public (CIDRs); the
    #: default refuses every private, loopback, link-local, shared and reserved range.
    egress_allow_networks: tuple[str, ...] = ()
    #: Largest body one fetch of a URL (media in or out) may bring, bytes; inputs are capped
    #: at 20 MiB as well.
    egress_max_bytes: int = 50 * 1024 * 1024
    #: Time limit of one fetch, redirects included, seconds.
    egress_timeout_s: int = 30
    #: Attempts per outgoing webhook delivery before it is given up.
    webhook_max_attempts: int = 8
    #: Delay before a delivery's first retry, milliseconds; it doubles with each attempt (times
    #: a random factor in [0.5, 1]) up to `MEDIAHUB_WEBHOOK_RETRY_MAX_S`.
    webhook_retry_base_ms: int = 5000
    #: Longest delay between two attempts of a delivery, seconds.
    webhook_retry_max_s: int = 3600
    #: Time one delivery attempt may take, seconds: resolving the receiver, connecting,
    #: sending the event and reading its answer (a receiver that trickles its answer is cut
    #: too); a cut attempt is retried like a 5xx.
    webhook_timeout_s: int = 10
    #: Webhook deliveries one process sends at once (the `<prefix>:webhooks` worker of each
    #: `mediahub worker`, or the embedded sender).
    webhook_concurrency: int = 32
    #: Deliveries of one tenant in flight at once, across all processes (counted in Valkey
    #: when there is one). A tenant's further deliveries wait without holding a slot, so
    #: one tenant's slow receivers leave the other slots to other tenants; keep it below
    #: `MEDIAHUB_WEBHOOK_CONCURRENCY`.
    webhook_max_in_flight: int = 8
    #: Webhook endpoints one tenant may register; one more is refused with
    #: `409 webhook_endpoint_limit`.
    webhook_max_endpoints: int = 20
    #: Ended webhook events (every delivery succeeded or gave up) older than this are deleted
    #: with their deliveries and delivery log; 0 keeps them forever.
    webhook_retention_days: int = 30
    #: Jobs run at once per queue (media type) by one worker process; `default` for the rest
    #: (MEDIAHUB_QUEUE_CONCURRENCY), else `worker_concurrency`. E.g. `image=8,video=2,default=4`;
    #: the embedded in-process queue follows it too.
    queue_concurrency: dict[str, int] = msgspec.field(default_factory=dict)
    #: How long a worker holds a running generation without renewing its lease (it renews
    #: every third of it); past it the reconciler hands the generation to another worker.
    #: Also the SAQ jobs' heartbeat, and how long a generation may stay queued before the
    #: reconciler queues it again.
    job_lease_s: int = 60
    #: How often the reconciler and reservation sweeper run (and SAQ's own sweep).
    sweep_interval_s: int = 30
    #: How often the usage rollups are refreshed (docs/analytics.md: their freshness).
    rollup_interval_s: int = 300
    #: On SIGTERM, how long running jobs may take to finish before they are handed back (and
    #: how long an API process lets open requests, event streams included, run on).
    shutdown_grace_s: int = 60
    #: Operators' overrides of providers' published prices, by the provider's environment
    #: name (`MEDIAHUB_OPENAI_PRICES={"dall-e-3/hd/1024x1024": 90000}` → "OPENAI"); applied
    #: to the providers at start (`Provider.set_prices`), which refuse unknown names.
    provider_prices: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    #: The SMTP server mail goes out through (sign-up verification, password reset, magic
    #: links, invitations). Unset: mail is written as `.eml` files to
    #: `MEDIAHUB_MAIL_OUTBOX_DIR` instead (development and the demo).
    smtp_host: str | None = None
    #: The SMTP server's port (25, 587 with STARTTLS, 465 with TLS).
    smtp_port: int = 25
    #: The SMTP user name; unset: no authentication.
    smtp_username: str | None = None
    #: The SMTP password (never logged).
    smtp_password: str | None = None
    #: Upgrade the SMTP connection with STARTTLS (port 587).
    smtp_starttls: bool = False
    #: Connect to the SMTP server over TLS from the start (port 465).
    smtp_tls: bool = False
    #: The platform's sender address; a tenant's `branding.sender_email` replaces it for that
    #: tenant's mail, and the tenant's name is always the sender's display name.
    mail_from: str = "no-reply@mediahub.localhost"
    #: Where mail goes when `MEDIAHUB_SMTP_HOST` is unset, one `.eml` file per message.
    mail_outbox_dir: str = "./mail"
    #: A signed-in session ends after this long without a request (or at its absolute
    #: lifetime, whichever comes first).
    session_idle_s: int = 7 * 86400
    #: A signed-in session ends this long after sign-in, however active.
    session_absolute_s: int = 30 * 86400
    #: How long an emailed verification link stays valid.
    verification_link_ttl_s: int = 2 * 86400
    #: How long an emailed password reset, magic sign-in or invitation link stays valid.
    email_link_ttl_s: int = 3600
    #: How long a portal link minted by `POST /v1/portal_sessions` stays valid (used once).
    portal_session_ttl_s: int = 300
    #: The shortest password accepted (common passwords are refused whatever their length).
    password_min_length: int = 10
    #: Sign-in, reset and magic-link requests allowed per email address per hour.
    auth_attempts_per_email_per_hour: int = 10
    #: Sign-in, sign-up, reset and magic-link requests allowed per client address per minute.
    auth_attempts_per_address_per_minute: int = 30
    #: How often an open `GET /v1/generations/events` stream sends a `: keepalive` comment,
    #: seconds (so proxies and browsers keep an idle stream open).
    events_keepalive_s: int = 15
    #: Event streams one tenant may hold open at once in one API process; one more answers
    #: `429 too_many_streams`.
    events_max_streams_per_tenant: int = 100
    #: The VAPID public key (application server key) of web push, base64url (an uncompressed
    #: P-256 point). Unset with the private key: web push is off (`GET /v1/push/key` answers
    #: `404 push_disabled`); `mediahub demo` makes a pair for its process.
    vapid_public_key: str | None = None
    #: The VAPID private key that signs web push requests: base64url of the raw P-256 key or
    #: a PEM. A secret: never logged or shown.
    vapid_private_key: str | None = None
    #: Who push services may contact about this server's pushes (`mailto:` or `https:`).
    vapid_subject: str = "mailto:push@mediahub.localhost"
    #: How each log line is written: `text` (for people) or `json` (one JSON object per
    #: line, for a log pipeline; docs/operations.md, "Logs").
    log_format: str = "text"
    #: A bearer token `GET /metrics` requires, at least 16 characters. Unset: `/metrics`
    #: answers loopback clients only (a scraper on the same host or network namespace).
    metrics_token: str | None = None
    #: Base URL of an OTLP/HTTP collector (`http://collector:4318`) to export traces to.
    #: Unset (and no standard `OTEL_EXPORTER_OTLP_ENDPOINT`): tracing is off.
    otel_endpoint: str | None = None

    def __repr__(self) -> str:
        # Settings end up in logs and tracebacks: secrets are shown as set or unset only.
        shown = ", ".join(
            f"{name}={'<hidden>' if getattr(self, name) else None}" if name in _SECRET_FIELDS
            else f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__)
        return f"Settings({shown})"

    def concurrency_for(self, media_type: str) -> int:
        """Jobs one worker process runs at once on the queue of `media_type`."""
        return self.queue_concurrency.get(
            media_type, self.queue_concurrency.get("default", self.worker_concurrency))

    @property
    def embedded(self) -> bool:
        """True when running with no servers: SQLite and no Valkey."""
        return self.database_url.startswith("sqlite") and self.valkey_url is None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int,
         problems: list[str]) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        problems.append(f"{name}={raw!r}: must be a whole number")
        return default
    if not lo <= value <= hi:
        problems.append(f"{name}={value}: must be between {lo} and {hi}")
        return default
    return value


def _per_type(env: Mapping[str, str], name: str, what: str, lo: int, hi: int,
              problems: list[str]) -> dict[str, int]:
    """`default=4,video=1` → {"default": 4, "video": 1}: a whole number per media type
    (`default` for the rest), each between `lo` and `hi`; `what` names the number."""
    values: dict[str, int] = {}
    for item in (part.strip() for part in env.get(name, "").split(",") if part.strip()):
        key, sep, value = (part.strip() for part in item.partition("="))
        if (not sep or key not in ("default", *MEDIA_TYPES) or not value.isdigit()
                or not lo <= int(value) <= hi):
            problems.append(f"{name}: {item!r} is not TYPE={what} with TYPE one of default, "
                            f"{', '.join(MEDIA_TYPES)} and {what} {lo}..{hi}")
            continue
        values[key] = int(value)
    return values


def _secret_file_for(database_url: str) -> Path:
    # Embedded mode keeps its generated secret beside the SQLite file, so a restart keeps
    # signed links and stored webhook secrets valid.
    path = database_url.split("///", 1)[1] if "///" in database_url else "mediahub.db"
    if path in ("", ":memory:"):
        return Path("mediahub.secret")
    return Path(path).with_suffix(".secret")


def _embedded_secret(database_url: str) -> bytes:
    """The embedded secret stored beside the SQLite file, generated on first start.

    Raises `SettingsError` when the stored file is empty or too short: a truncated file must
    never become an empty (or guessable) signing key.
    """
    path = _secret_file_for(database_url)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _create_private(path, secrets.token_urlsafe(48) + "\n")
    value = path.read_text().strip()
    if len(value) < _MIN_SECRET:
        raise SettingsError([
            f"{path}: the stored secret is empty or shorter than {_MIN_SECRET} characters; "
            "set MEDIAHUB_SECRET_KEY, or delete the file to generate a new secret (links "
            "signed and webhook secrets stored under the old one stop working)"])
    return value.encode()


def _create_private(path: Path, content: str) -> None:
    """Create `path` with `content`, mode 0600 from the start, unless it already exists.

    The content goes to a private temporary file that is then hard-linked into place, so no
    one ever sees the file half-written or readable by others, and when two processes start
    at once both keep the first one's secret.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:
            # A file system without hard links: exclusive create, still 0600 from the start.
            try:
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return
            with os.fdopen(out, "w") as handle:
                handle.write(content)
    finally:
        os.unlink(tmp)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings; called once by each command at start.

    Returns the settings, or raises `SettingsError` naming every bad variable.
    """
    env = os.environ if env is None else env
    problems: list[str] = []

    database_url = env.get("MEDIAHUB_DATABASE_URL") or _EMBEDDED_DB
    if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        problems.append(
            f"MEDIAHUB_DATABASE_URL={database_url.split('@')[-1]!r}: must start with "
            "'sqlite+aiosqlite://' or 'postgresql+asyncpg://'"
        )
    elif database_url.startswith("postgresql+asyncpg://") and re.search(
            r"[?&]sslmode=", database_url):
        # The URL's query goes to asyncpg.connect() as keywords, and it has no `sslmode`
        # keyword: without this, the first connection would fail with a TypeError.
        problems.append("MEDIAHUB_DATABASE_URL: asyncpg takes TLS as `?ssl=require` (or "
                        "`ssl=verify-full`), not `sslmode=`")
    pre_ping = env.get("MEDIAHUB_DATABASE_PRE_PING", "").strip().lower()
    if pre_ping not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
        problems.append(f"MEDIAHUB_DATABASE_PRE_PING={pre_ping!r}: must be 1 or 0")
    pool_size = _int(env, "MEDIAHUB_DATABASE_POOL_SIZE", 20, 1, 1000, problems)
    max_overflow = _int(env, "MEDIAHUB_DATABASE_MAX_OVERFLOW", 20, 0, 1000, problems)
    pool_timeout = _int(env, "MEDIAHUB_DATABASE_POOL_TIMEOUT_S", 5, 1, 300, problems)
    input_deadline = _int(env, "MEDIAHUB_INPUT_FETCH_DEADLINE_S", 30, 1, 600, problems)
    valkey_url = env.get("MEDIAHUB_VALKEY_URL") or None
    if valkey_url and not valkey_url.startswith(("redis://", "rediss://", "valkey://",
                                                   "valkeys://", "unix://")):
        problems.append("MEDIAHUB_VALKEY_URL: must be a redis:// or valkey:// URL")
    storage_url = env.get("MEDIAHUB_STORAGE_URL") or "file://./media"
    if not storage_url.startswith(("file://", "s3://")):
        problems.append(f"MEDIAHUB_STORAGE_URL={storage_url!r}: must be file://DIR or s3://BUCKET")
    public_base_url = env.get("MEDIAHUB_PUBLIC_BASE_URL") or "http://127.0.0.1:8000"
    if not public_base_url.startswith(("http://", "https://")):
        problems.append(f"MEDIAHUB_PUBLIC_BASE_URL={public_base_url!r}: must be an http(s) URL")
    media_cdn_base_url = _cdn_base_url(env.get("MEDIAHUB_MEDIA_CDN_BASE_URL") or None,
                                       storage_url, problems)

    embedded = database_url.startswith("sqlite") and valkey_url is None
    raw_secret = env.get("MEDIAHUB_SECRET_KEY") or ""
    if raw_secret and len(raw_secret) < 32:
        problems.append("MEDIAHUB_SECRET_KEY: must be at least 32 characters")
    elif not raw_secret and not embedded:
        problems.append(
            "MEDIAHUB_SECRET_KEY: required outside embedded mode (generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(48))')")
    admin_token = env.get("MEDIAHUB_ADMIN_TOKEN") or None
    if admin_token is not None and len(admin_token) < 16:
        problems.append("MEDIAHUB_ADMIN_TOKEN: must be at least 16 characters")

    media_ttl = _int(env, "MEDIAHUB_MEDIA_URL_TTL_S", 3600, 10, 7 * 86400, problems)
    reservation_timeout = _int(env, "MEDIAHUB_RESERVATION_TIMEOUT_S", 900, 10, 86400, problems)
    concurrency = _int(env, "MEDIAHUB_WORKER_CONCURRENCY", 4, 1, 256, problems)
    disabled = tuple(p.strip() for p in env.get("MEDIAHUB_DISABLED_PLUGINS", "").split(",")
                     if p.strip())
    allowed = tuple(p.strip() for p in env.get("MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS", "")
                    .split(",") if p.strip())
    for name in allowed:
        if not re.fullmatch(r"\*|[a-z0-9][a-z0-9_-]{0,63}", name):
            problems.append(f"MEDIAHUB_DEFAULT_ALLOWED_PROVIDERS: {name!r} is not a provider "
                            "name or `*`")

    markups = _per_type(env, "MEDIAHUB_PLATFORM_MARKUP_BPS", "BASIS_POINTS", 0, 10**6,
                        problems)
    rpm = _int(env, "MEDIAHUB_RATE_LIMIT_REQUESTS_PER_MINUTE", 6000, 0, 10**9, problems)
    burst = _int(env, "MEDIAHUB_RATE_LIMIT_BURST", 1000, 0, 10**9, problems)
    key_rpm = _int(env, "MEDIAHUB_RATE_LIMIT_KEY_REQUESTS_PER_MINUTE", 3000, 0, 10**9,
                   problems)
    key_burst = _int(env, "MEDIAHUB_RATE_LIMIT_KEY_BURST", 600, 0, 10**9, problems)
    concurrent_jobs = _per_type(env, "MEDIAHUB_RATE_LIMIT_CONCURRENT_JOBS", "COUNT", 0, 10**9,
                                problems)
    spend_cap = _int(env, "MEDIAHUB_RATE_LIMIT_DAILY_SPEND_CAP_MC", 0, 0, 10**15, problems)
    cache_ttl = _int(env, "MEDIAHUB_CACHE_TTL_S", 86400, 0, 90 * 86400, problems)
    verification_port = _int(env, "MEDIAHUB_DOMAIN_VERIFICATION_PORT", 80, 1, 65535, problems)
    egress = _egress_settings(env, problems)
    queue_concurrency = _per_type(env, "MEDIAHUB_QUEUE_CONCURRENCY", "JOBS", 1, 256, problems)
    job_lease = _int(env, "MEDIAHUB_JOB_LEASE_S", 60, 2, 3600, problems)
    sweep_interval = _int(env, "MEDIAHUB_SWEEP_INTERVAL_S", 30, 1, 3600, problems)
    rollup_interval = _int(env, "MEDIAHUB_ROLLUP_INTERVAL_S", 300, 10, 86400, problems)
    shutdown_grace = _int(env, "MEDIAHUB_SHUTDOWN_GRACE_S", 60, 0, 3600, problems)
    provider_prices = _provider_prices(env, problems)
    people = _people_settings(env, problems)
    push = _push_settings(env, problems)
    observing = _observing_settings(env, problems)

    if problems:
        raise SettingsError(problems)
    secret_key = raw_secret.encode() if raw_secret else _embedded_secret(database_url)
    return Settings(
        database_url=database_url,
        database_pre_ping=pre_ping in ("1", "true", "yes", "on"),
        database_pool_size=pool_size,
        database_max_overflow=max_overflow,
        database_pool_timeout_s=pool_timeout,
        input_fetch_deadline_s=input_deadline,
        valkey_url=valkey_url,
        storage_url=storage_url,
        s3_endpoint_url=env.get("MEDIAHUB_S3_ENDPOINT_URL") or None,
        media_cdn_base_url=media_cdn_base_url,
        admin_token=admin_token,
        secret_key=secret_key,
        public_base_url=public_base_url,
        media_url_ttl_s=media_ttl,
        reservation_timeout_s=reservation_timeout,
        queue_prefix=env.get("MEDIAHUB_QUEUE_PREFIX") or "mediahub",
        worker_concurrency=concurrency,
        disabled_plugins=disabled,
        default_allowed_providers=allowed,
        platform_markup_bps=markups,
        stripe_api_key=env.get("MEDIAHUB_STRIPE_API_KEY") or None,
        stripe_webhook_secret=env.get("MEDIAHUB_STRIPE_WEBHOOK_SECRET") or None,
        stripe_base_url=env.get("MEDIAHUB_STRIPE_BASE_URL") or None,
        rate_limit_requests_per_minute=rpm,
        rate_limit_burst=burst,
        rate_limit_key_requests_per_minute=key_rpm,
        rate_limit_key_burst=key_burst,
        rate_limit_concurrent_jobs=concurrent_jobs,
        rate_limit_daily_spend_cap_mc=spend_cap,
        cache_ttl_s=cache_ttl,
        domain_verification_port=verification_port,
        **egress,
        queue_concurrency=queue_concurrency,
        job_lease_s=job_lease,
        sweep_interval_s=sweep_interval,
        rollup_interval_s=rollup_interval,
        shutdown_grace_s=shutdown_grace,
        provider_prices=provider_prices,
        **people,
        **push,
        **observing,
    )


def _observing_settings(env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """Logs, metrics and tracing; every bad value is added to `problems`."""
    log_format = env.get("MEDIAHUB_LOG_FORMAT", "").strip().lower() or "text"
    if log_format not in ("text", "json"):
        problems.append(f"MEDIAHUB_LOG_FORMAT={log_format!r}: must be text or json")
    token = env.get("MEDIAHUB_METRICS_TOKEN") or None
    if token is not None and len(token) < 16:
        problems.append("MEDIAHUB_METRICS_TOKEN: must be at least 16 characters")
    endpoint = env.get("MEDIAHUB_OTEL_ENDPOINT") or None
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        problems.append("MEDIAHUB_OTEL_ENDPOINT: must be an http(s) URL")
    return {"log_format": log_format, "metrics_token": token, "otel_endpoint": endpoint}


def _push_settings(env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """The event stream and web push settings; every bad value is added to `problems`."""
    public = env.get("MEDIAHUB_VAPID_PUBLIC_KEY") or None
    private = env.get("MEDIAHUB_VAPID_PRIVATE_KEY") or None
    if (public is None) != (private is None):
        problems.append("MEDIAHUB_VAPID_PUBLIC_KEY and MEDIAHUB_VAPID_PRIVATE_KEY: set both "
                        "or neither")
    subject = env.get("MEDIAHUB_VAPID_SUBJECT") or "mailto:push@mediahub.localhost"
    if not subject.startswith(("mailto:", "https://")):
        problems.append("MEDIAHUB_VAPID_SUBJECT: must start with mailto: or https://")
    return {
        "events_keepalive_s": _int(env, "MEDIAHUB_EVENTS_KEEPALIVE_S", 15, 1, 3600, problems),
        "events_max_streams_per_tenant": _int(
            env, "MEDIAHUB_EVENTS_MAX_STREAMS_PER_TENANT", 100, 1, 100_000, problems),
        "vapid_public_key": public,
        "vapid_private_key": private,
        "vapid_subject": subject,
    }


def _provider_prices(env: Mapping[str, str], problems: list[str]) -> dict[str, dict[str, int]]:
    """`MEDIAHUB_<PROVIDER>_PRICES` (a JSON object of price name → USD micros) by provider
    environment name. Whether the names exist is checked against the providers at start."""
    prices: dict[str, dict[str, int]] = {}
    for name, raw in env.items():
        if not (name.startswith("MEDIAHUB_") and name.endswith("_PRICES")) or not raw:
            continue
        provider = name[len("MEDIAHUB_"):-len("_PRICES")]
        try:
            table = msgspec.json.decode(raw, type=dict[str, int])
        except msgspec.DecodeError as exc:
            problems.append(f"{name}: must be a JSON object of price name to whole USD "
                            f"micros ({exc})")
            continue
        negative = sorted(k for k, v in table.items() if v < 0)
        if negative:
            problems.append(f"{name}: prices must not be negative ({', '.join(negative)})")
            continue
        prices[provider] = table
    return prices


def _flag(env: Mapping[str, str], name: str, problems: list[str]) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "0", "1", "true", "false", "yes", "no", "on", "off"):
        problems.append(f"{name}={raw!r}: must be true or false")
    return raw in ("1", "true", "yes", "on")


def _cdn_base_url(value: str | None, storage_url: str, problems: list[str]) -> str | None:
    """MEDIAHUB_MEDIA_CDN_BASE_URL without its trailing slash, or None when unset; a bad
    value is added to `problems`. Called by `load_settings`."""
    if value is None:
        return None
    name = "MEDIAHUB_MEDIA_CDN_BASE_URL"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        problems.append(f"{name}={value!r}: is not a valid URL")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"{name}={value!r}: must be an http(s) URL with a host")
    elif parts.query or parts.fragment or "?" in value or "#" in value:
        # The object key is appended to it: a query or fragment would swallow the key.
        problems.append(f"{name}={value!r}: must have no query string or fragment")
    elif parts.username is not None or parts.password is not None:
        problems.append(f"{name}={value!r}: must not carry credentials")
    elif not storage_url.startswith("s3://"):
        # Local files carry a header before the media (LocalStorage), so a CDN in front
        # of the directory would serve broken files; they are served by signed links only.
        problems.append(f"{name}: needs MEDIAHUB_STORAGE_URL=s3://... (the CDN's origin is "
                        "the media bucket)")
    return value.rstrip("/")


def _people_settings(env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """Mail, sessions and sign-in settings (docs/user-guide.md, "People"); every bad value is
    added to `problems`."""
    mail_from = env.get("MEDIAHUB_MAIL_FROM") or "no-reply@mediahub.localhost"
    if "@" not in mail_from or any(c in mail_from for c in "\r\n<>"):
        problems.append(f"MEDIAHUB_MAIL_FROM={mail_from!r}: must be a bare email address")
    starttls = _flag(env, "MEDIAHUB_SMTP_STARTTLS", problems)
    tls = _flag(env, "MEDIAHUB_SMTP_TLS", problems)
    if starttls and tls:
        problems.append("MEDIAHUB_SMTP_STARTTLS and MEDIAHUB_SMTP_TLS: set one, not both")
    idle = _int(env, "MEDIAHUB_SESSION_IDLE_S", 7 * 86400, 60, 365 * 86400, problems)
    absolute = _int(env, "MEDIAHUB_SESSION_ABSOLUTE_S", 30 * 86400, 60, 365 * 86400, problems)
    return {
        "smtp_host": env.get("MEDIAHUB_SMTP_HOST") or None,
        "smtp_port": _int(env, "MEDIAHUB_SMTP_PORT", 25, 1, 65535, problems),
        "smtp_username": env.get("MEDIAHUB_SMTP_USERNAME") or None,
        "smtp_password": env.get("MEDIAHUB_SMTP_PASSWORD") or None,
        "smtp_starttls": starttls,
        "smtp_tls": tls,
        "mail_from": mail_from,
        "mail_outbox_dir": env.get("MEDIAHUB_MAIL_OUTBOX_DIR") or "./mail",
        "session_idle_s": idle,
        "session_absolute_s": absolute,
        "verification_link_ttl_s": _int(env, "MEDIAHUB_VERIFICATION_LINK_TTL_S", 2 * 86400,
                                        60, 30 * 86400, problems),
        "email_link_ttl_s": _int(env, "MEDIAHUB_EMAIL_LINK_TTL_S", 3600, 60, 7 * 86400,
                                 problems),
        "portal_session_ttl_s": _int(env, "MEDIAHUB_PORTAL_SESSION_TTL_S", 300, 10, 86400,
                                     problems),
        "password_min_length": _int(env, "MEDIAHUB_PASSWORD_MIN_LENGTH", 10, 8, 128,
                                    problems),
        "auth_attempts_per_email_per_hour": _int(
            env, "MEDIAHUB_AUTH_ATTEMPTS_PER_EMAIL_PER_HOUR", 10, 1, 10**6, problems),
        "auth_attempts_per_address_per_minute": _int(
            env, "MEDIAHUB_AUTH_ATTEMPTS_PER_ADDRESS_PER_MINUTE", 30, 1, 10**6, problems),
    }


_LOOPBACK_NETWORKS: Final = ("127.0.0.0/8", "::1/128")


def _egress_settings(env: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    """The egress guard and outgoing-webhook settings (README, "Outgoing webhooks and
    egress"); every bad value is added to `problems`."""
    networks: list[str] = []
    for item in (p.strip() for p in env.get("MEDIAHUB_EGRESS_ALLOW_NETWORKS", "").split(",")):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            problems.append(f"MEDIAHUB_EGRESS_ALLOW_NETWORKS: {item!r} is not a network (CIDR)")
    loopback = env.get("MEDIAHUB_EGRESS_ALLOW_LOOPBACK", "").strip().lower()
    if loopback in ("1", "true", "yes", "on"):
        networks.extend(n for n in _LOOPBACK_NETWORKS if n not in networks)
    elif loopback not in ("", "0", "false", "no", "off"):
        problems.append("MEDIAHUB_EGRESS_ALLOW_LOOPBACK: must be true or false")
    return {
        "egress_allow_networks": tuple(networks),
        "egress_max_bytes": _int(env, "MEDIAHUB_EGRESS_MAX_BYTES", 50 * 1024 * 1024, 1024,
                                 2 * 1024**3, problems),
        "egress_timeout_s": _int(env, "MEDIAHUB_EGRESS_TIMEOUT_S", 30, 1, 600, problems),
        "webhook_max_attempts": _int(env, "MEDIAHUB_WEBHOOK_MAX_ATTEMPTS", 8, 1, 30, problems),
        "webhook_retry_base_ms": _int(env, "MEDIAHUB_WEBHOOK_RETRY_BASE_MS", 5000, 1,
                                      3_600_000, problems),
        "webhook_retry_max_s": _int(env, "MEDIAHUB_WEBHOOK_RETRY_MAX_S", 3600, 1, 7 * 86400,
                                    problems),
        "webhook_timeout_s": _int(env, "MEDIAHUB_WEBHOOK_TIMEOUT_S", 10, 1, 120, problems),
        "webhook_concurrency": _int(env, "MEDIAHUB_WEBHOOK_CONCURRENCY", 32, 1, 1024,
                                    problems),
        "webhook_max_in_flight": _int(env, "MEDIAHUB_WEBHOOK_MAX_IN_FLIGHT", 8, 1, 1024,
                                      problems),
        "webhook_max_endpoints": _int(env, "MEDIAHUB_WEBHOOK_MAX_ENDPOINTS", 20, 1, 10_000,
                                      problems),
        "webhook_retention_days": _int(env, "MEDIAHUB_WEBHOOK_RETENTION_DAYS", 30, 0, 3650,
                                       problems),
    }


# The reference of every setting, docs/configuration.md, is rendered from the definitions
# above (each field's `#:` comment, type and default; the ranges `load_settings` checks):
#     uv run python -m gateway.core.settings > docs/configuration.md
# tests/gateway/core/test_configuration_docs.py fails when the file and the definitions differ.

#: Variables read beside the fields: (variable, type, default, meaning, the field it follows).
_OTHER_VARIABLES: Final = (
    ("MEDIAHUB_EGRESS_ALLOW_LOOPBACK", "boolean", "off",
     "On: the egress client may also reach `127.0.0.0/8` and `::1/128` (development, tests).",
     "egress_allow_networks"),
)
#: Variables of each installed provider, `<PROVIDER>` being its name in upper case with `-`
#: as `_` (`local-image` → `LOCAL_IMAGE`), read by the runtime when it calls the provider.
_PROVIDER_VARIABLES: Final = (
    ("MEDIAHUB_<PROVIDER>_API_KEY", "string", "unset",
     "The platform's key for the provider. Unset: the provider is listed as `unconfigured` "
     "and routing skips it, except for tenants that set their own key."),
    ("MEDIAHUB_<PROVIDER>_API_SECRET", "string", "unset",
     "The second half of a key pair (Kling's secret key)."),
    ("MEDIAHUB_<PROVIDER>_BASE_URL", "URL", "the provider's public API",
     "Where the provider is called instead: a proxy, a fake in tests, or a self-hosted "
     "engine (AUTOMATIC1111 has no public API and is unconfigured without it)."),
)
#: Fields read from one variable per provider rather than from `MEDIAHUB_<FIELD>`:
#: (variable, type, default).
_PROVIDER_FIELDS: Final = {
    "provider_prices": ("MEDIAHUB_<PROVIDER>_PRICES", "JSON object: price name → USD micros",
                        "the provider's published prices"),
}


_REFERENCE: Final = """\
# Configuration

<!-- Generated from gateway/core/settings.py; do not edit by hand. -->

This page is generated from the settings' definitions in `gateway/core/settings.py`: change a
setting or its description there (the `#:` comment beside it), then run

```sh
uv run python -m gateway.core.settings > docs/configuration.md
```

`tests/gateway/core/test_configuration_docs.py` fails while the two differ.

mediahub reads these environment variables once, when a command starts. An empty value counts
as unset. Every bad value is reported at once, one line per variable, and the command exits
with status 2. Ranges are inclusive. *Embedded mode* is SQLite with no Valkey: one process, no
servers.

{general}

## Per provider

Each installed provider, built in or a plugin, reads these. `<PROVIDER>` is its name in upper
case with `-` written `_`: `local-image` → `MEDIAHUB_LOCAL_IMAGE_API_KEY`. A tenant's own
credentials (`PUT /v1/provider_keys/{{provider}}`) take precedence for that tenant's calls.
What each built-in provider needs: [providers.md](providers.md).

{per_provider}
"""


def setting_descriptions() -> dict[str, str]:
    """Each field's description: its `#:` comment lines, joined (as Sphinx reads them)."""
    import inspect
    import re

    descriptions: dict[str, str] = {}
    comment: list[str] = []
    for line in inspect.getsource(Settings).splitlines():
        text = line.strip()
        if text.startswith("#:"):
            comment.append(text[2:].strip())
            continue
        field = re.match(r"(\w+)\s*:", text)
        if field and field[1] in Settings.__struct_fields__ and comment:
            descriptions[field[1]] = " ".join(comment)
        comment = []
    return descriptions


def _checked_ranges() -> dict[str, tuple[int, int]]:
    """`MEDIAHUB_X` → the inclusive range `load_settings` accepts (its `_int` and `_per_type`
    calls, read from this module's source)."""
    import ast
    import inspect
    import operator
    import sys

    ops = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Pow: operator.pow}

    def number(node: ast.expr) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in ops:
            return int(ops[type(node.op)](number(node.left), number(node.right)))
        raise ValueError(ast.unparse(node))

    ranges: dict[str, tuple[int, int]] = {}
    for node in ast.walk(ast.parse(inspect.getsource(sys.modules[__name__]))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("_int", "_per_type") and len(node.args) == 6
                and isinstance(name := node.args[1], ast.Constant)):
            ranges[str(name.value)] = (number(node.args[3]), number(node.args[4]))
    return ranges


def _type_label(annotation: Any, bounds: tuple[int, int] | None) -> str:
    import types
    from typing import get_args, get_origin

    span = f" {bounds[0]}..{bounds[1]}" if bounds else ""
    args = tuple(a for a in get_args(annotation) if a is not type(None))
    if isinstance(annotation, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return f"integer{span}"
    if annotation in (str, bytes):
        return "string"
    if get_origin(annotation) is tuple:
        return "comma-separated list"
    if get_origin(annotation) is dict and args == (str, int):
        return f"`TYPE=N,…` (TYPE: a media type or `default`; N{span})"
    raise ValueError(f"no label for {annotation!r}")


def _default_label(value: Any) -> str:
    if value is None or value in ("", b"", (), {}):
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, int) and value >= 1024**2 and value % 1024**2 == 0:
        return f"`{value}` ({value // 1024**2} MiB)"
    return f"`{value}`"


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def reference_markdown() -> str:
    """docs/configuration.md: every setting (variable, type, default, meaning) as Markdown.

    Raises `ValueError` when a field has no description (a `#:` comment above it)."""
    descriptions = setting_descriptions()
    missing = [f.name for f in msgspec.structs.fields(Settings) if f.name not in descriptions]
    if missing:
        raise ValueError(f"settings without a `#:` description: {', '.join(missing)}")
    ranges = _checked_ranges()
    header = ("variable", "type", "default", "meaning")
    general = [_row(*header), _row(*("---",) * 4)]
    per_provider = [_row(*header), _row(*("---",) * 4)]
    per_provider += [_row(f"`{v}`", t, d, m) for v, t, d, m in _PROVIDER_VARIABLES]
    for field in msgspec.structs.fields(Settings):
        default = (field.default_factory() if field.default is msgspec.NODEFAULT
                   else field.default)
        if field.name in _PROVIDER_FIELDS:
            variable, kind, published = _PROVIDER_FIELDS[field.name]
            per_provider.append(_row(f"`{variable}`", kind, published,
                                     descriptions[field.name]))
            continue
        variable = f"MEDIAHUB_{field.name.upper()}"
        general.append(_row(f"`{variable}`", _type_label(field.type, ranges.get(variable)),
                            _default_label(default), descriptions[field.name]))
        general += [_row(f"`{v}`", t, d, m)
                    for v, t, d, m, after in _OTHER_VARIABLES if after == field.name]
    return _REFERENCE.format(general="\n".join(general),
                             per_provider="\n".join(per_provider))


if __name__ == "__main__":
    print(reference_markdown(), end="")
