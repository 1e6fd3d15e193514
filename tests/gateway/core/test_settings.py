"""Settings from the environment: defaults, validation, the embedded secret, and fail-fast start."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from gateway.core.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[3]
SECRET = "s" * 40
PG = "postgresql+asyncpg://mediahub:pw@db.internal:5432/mediahub"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def test_defaults_are_embedded_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default database and its secret live in the cwd
    settings = load_settings({})
    assert settings.database_url == "sqlite+aiosqlite:///./mediahub.db"
    assert settings.embedded
    assert settings.is_sqlite
    assert settings.valkey_url is None
    assert settings.storage_url == "file://./media"
    assert settings.s3_endpoint_url is None
    assert settings.admin_token is None
    assert settings.public_base_url == "http://127.0.0.1:8000"
    assert settings.media_url_ttl_s == 3600
    assert settings.reservation_timeout_s == 900
    assert settings.worker_concurrency == 4
    assert settings.queue_prefix == "mediahub"
    assert settings.disabled_plugins == ()
    assert len(settings.secret_key) >= 32
    assert (tmp_path / "mediahub.secret").read_text().strip().encode() == settings.secret_key
    # Empty values count as unset.
    again = load_settings({"MEDIAHUB_VALKEY_URL": "", "MEDIAHUB_ADMIN_TOKEN": "",
                           "MEDIAHUB_MEDIA_URL_TTL_S": ""})
    assert again.embedded
    assert again.admin_token is None
    assert again.media_url_ttl_s == 3600
    assert again.secret_key == settings.secret_key


def test_values_are_read(tmp_path: Path) -> None:
    settings = load_settings({
        "MEDIAHUB_DATABASE_URL": PG,
        "MEDIAHUB_VALKEY_URL": "redis://cache:6379/1",
        "MEDIAHUB_STORAGE_URL": "s3://media-bucket",
        "MEDIAHUB_S3_ENDPOINT_URL": "http://minio:9000",
        "MEDIAHUB_ADMIN_TOKEN": "a" * 16,
        "MEDIAHUB_SECRET_KEY": SECRET,
        "MEDIAHUB_PUBLIC_BASE_URL": "https://media.example.com",
        "MEDIAHUB_MEDIA_URL_TTL_S": "60",
        "MEDIAHUB_WORKER_CONCURRENCY": "16",
        "MEDIAHUB_DISABLED_PLUGINS": " a, ,b ",
    })
    assert settings == Settings(
        database_url=PG, valkey_url="redis://cache:6379/1", storage_url="s3://media-bucket",
        s3_endpoint_url="http://minio:9000", admin_token="a" * 16, secret_key=SECRET.encode(),
        public_base_url="https://media.example.com", media_url_ttl_s=60,
        worker_concurrency=16, disabled_plugins=("a", "b"))
    assert not settings.embedded
    assert list(tmp_path.iterdir()) == []


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({
            "MEDIAHUB_DATABASE_URL": "mysql://root:hunter2@db/mediahub",
            "MEDIAHUB_MEDIA_URL_TTL_S": "an hour",
            "MEDIAHUB_ADMIN_TOKEN": "short",
            "MEDIAHUB_PUBLIC_BASE_URL": "ftp://media.example.com",
            "MEDIAHUB_SECRET_KEY": SECRET,
        })
    problems = caught.value.problems
    names = ["MEDIAHUB_DATABASE_URL", "MEDIAHUB_MEDIA_URL_TTL_S", "MEDIAHUB_ADMIN_TOKEN",
             "MEDIAHUB_PUBLIC_BASE_URL"]
    assert len(problems) == len(names), problems
    for name in names:
        assert sum(p.startswith(name) for p in problems) == 1, (name, problems)
    message = str(caught.value)
    assert all(name in message for name in names)
    # A database password in a bad URL is not echoed; neither is the bad admin token.
    assert "hunter2" not in message
    assert "short" not in message


@pytest.mark.parametrize(("name", "value"), [
    ("MEDIAHUB_MEDIA_URL_TTL_S", "0"),
    ("MEDIAHUB_MEDIA_URL_TTL_S", "-5"),
    ("MEDIAHUB_RESERVATION_TIMEOUT_S", "1.5"),
    ("MEDIAHUB_WORKER_CONCURRENCY", "100000"),
    ("MEDIAHUB_VALKEY_URL", "http://cache:6379"),
    ("MEDIAHUB_STORAGE_URL", "/var/media"),
    ("MEDIAHUB_SECRET_KEY", "too-short"),
    ("MEDIAHUB_DATABASE_PRE_PING", "sometimes"),
    ("MEDIAHUB_DATABASE_POOL_SIZE", "0"),
    ("MEDIAHUB_DATABASE_MAX_OVERFLOW", "-1"),
    ("MEDIAHUB_DATABASE_POOL_TIMEOUT_S", "0"),
    ("MEDIAHUB_INPUT_FETCH_DEADLINE_S", "soon"),
])
def test_one_bad_value_is_named(name: str, value: str) -> None:
    env = {"MEDIAHUB_DATABASE_URL": PG, "MEDIAHUB_SECRET_KEY": SECRET, name: value}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert [p.split("=")[0].split(":")[0] for p in caught.value.problems] == [name]


def test_the_pool_and_input_deadline_are_read() -> None:
    env = {"MEDIAHUB_DATABASE_URL": PG, "MEDIAHUB_SECRET_KEY": SECRET}
    default = load_settings(env)
    assert (default.database_pool_size, default.database_max_overflow,
            default.database_pool_timeout_s, default.input_fetch_deadline_s) == (20, 20, 5, 30)
    given = load_settings({**env, "MEDIAHUB_DATABASE_POOL_SIZE": "3",
                           "MEDIAHUB_DATABASE_MAX_OVERFLOW": "0",
                           "MEDIAHUB_DATABASE_POOL_TIMEOUT_S": "2",
                           "MEDIAHUB_INPUT_FETCH_DEADLINE_S": "9"})
    assert (given.database_pool_size, given.database_max_overflow,
            given.database_pool_timeout_s, given.input_fetch_deadline_s) == (3, 0, 2, 9)


@pytest.mark.parametrize(("value", "expected"), [("", False), ("0", False), ("1", True),
                                               ("on", True)])
def test_pre_ping_is_off_unless_asked(value: str, expected: bool) -> None:
    env = {"MEDIAHUB_DATABASE_URL": PG, "MEDIAHUB_SECRET_KEY": SECRET,
           "MEDIAHUB_DATABASE_PRE_PING": value}
    assert load_settings(env).database_pre_ping is expected


def test_a_secret_key_is_required_outside_embedded_mode(tmp_path: Path) -> None:
    for env in ({"MEDIAHUB_DATABASE_URL": PG},
                # SQLite with Valkey is not embedded either: workers in other processes.
                {"MEDIAHUB_DATABASE_URL": sqlite_url(tmp_path / "m.db"),
                 "MEDIAHUB_VALKEY_URL": "redis://cache:6379/0"}):
        with pytest.raises(SettingsError) as caught:
            load_settings(env)
        assert len(caught.value.problems) == 1
        assert caught.value.problems[0].startswith("MEDIAHUB_SECRET_KEY")
        assert load_settings({**env, "MEDIAHUB_SECRET_KEY": SECRET}).secret_key == SECRET.encode()
    assert list(tmp_path.iterdir()) == [], "no secret file outside embedded mode"


def test_embedded_mode_generates_its_secret_once(tmp_path: Path) -> None:
    db = tmp_path / "data" / "hub.db"
    env = {"MEDIAHUB_DATABASE_URL": sqlite_url(db)}
    first = load_settings(env)
    secret_file = tmp_path / "data" / "hub.secret"
    assert secret_file.exists()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert len(first.secret_key) >= 32
    assert secret_file.read_text().strip().encode() == first.secret_key
    assert load_settings(env).secret_key == first.secret_key

    # Another database gets another secret.
    other = load_settings({"MEDIAHUB_DATABASE_URL": sqlite_url(tmp_path / "other.db")})
    assert other.secret_key != first.secret_key
    # A configured secret wins and nothing is written.
    given = load_settings({"MEDIAHUB_DATABASE_URL": sqlite_url(tmp_path / "given.db"),
                           "MEDIAHUB_SECRET_KEY": SECRET})
    assert given.secret_key == SECRET.encode()
    assert not (tmp_path / "given.secret").exists()


@pytest.mark.parametrize("content", ["", "\n", "short\n"])
def test_an_empty_or_short_secret_file_is_refused(tmp_path: Path, content: str) -> None:
    """A truncated secret file must never become an empty (or guessable) signing key."""
    (tmp_path / "hub.secret").write_text(content)
    with pytest.raises(SettingsError) as caught:
        load_settings({"MEDIAHUB_DATABASE_URL": sqlite_url(tmp_path / "hub.db")})
    assert "hub.secret" in str(caught.value)


def test_the_secret_file_is_never_readable_by_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even for an instant: it is created 0600, not written under the umask then chmod-ed."""
    seen: list[int] = []
    real_chmod = os.chmod

    def spying_chmod(path: str | os.PathLike[str], mode: int, **kwargs: object) -> None:
        if Path(path).exists():
            seen.append(stat.S_IMODE(os.stat(path).st_mode))
        real_chmod(path, mode, **kwargs)  # type: ignore[arg-type]

    old = os.umask(0o022)
    try:
        monkeypatch.setattr(os, "chmod", spying_chmod)
        load_settings({"MEDIAHUB_DATABASE_URL": sqlite_url(tmp_path / "hub.db")})
    finally:
        os.umask(old)
    assert all(mode & 0o077 == 0 for mode in seen), [oct(m) for m in seen]
    assert stat.S_IMODE((tmp_path / "hub.secret").stat().st_mode) == 0o600


def test_serve_with_a_bad_setting_exits_2_and_says_why(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAHUB_")}
    env["MEDIAHUB_DATABASE_URL"] = "mysql://root:hunter2@db/mediahub"
    done = subprocess.run(
        ["uv", "run", "--project", str(ROOT), "mediahub", "serve", "--port", "1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "MEDIAHUB_DATABASE_URL" in done.stderr
    assert "Traceback" not in done.stderr
    assert "hunter2" not in done.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is created before the settings are valid"


def test_the_cli_reports_bad_settings_the_same_way(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import cli

    monkeypatch.setenv("MEDIAHUB_DATABASE_URL", "nope://")
    with pytest.raises(SystemExit) as caught:
        cli.main(["serve"])
    assert caught.value.code == 2
    assert "MEDIAHUB_DATABASE_URL" in capsys.readouterr().err


def test_the_cli_refuses_a_price_override_no_provider_has(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import cli

    monkeypatch.setenv("MEDIAHUB_DATABASE_URL", PG)
    monkeypatch.setenv("MEDIAHUB_SECRET_KEY", SECRET)
    monkeypatch.setenv("MEDIAHUB_OPENAI_PRICES", '{"no-such-price": 1}')
    with pytest.raises(SystemExit) as caught:
        cli.main(["serve"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "MEDIAHUB_OPENAI_PRICES" in err
    assert "no-such-price" in err


def test_the_media_cdn_base_url_is_unset_by_default_and_read_without_its_slash() -> None:
    env = {"MEDIAHUB_DATABASE_URL": PG, "MEDIAHUB_SECRET_KEY": SECRET,
           "MEDIAHUB_STORAGE_URL": "s3://media-bucket/out"}
    assert load_settings(env).media_cdn_base_url is None
    given = load_settings({**env, "MEDIAHUB_MEDIA_CDN_BASE_URL": "https://cdn.example.com/m/"})
    assert given.media_cdn_base_url == "https://cdn.example.com/m"
    plain = load_settings({**env, "MEDIAHUB_MEDIA_CDN_BASE_URL": "http://cdn.lan:8080"})
    assert plain.media_cdn_base_url == "http://cdn.lan:8080"


@pytest.mark.parametrize(("value", "says"), [
    ("cdn.example.com", "http(s) URL"),
    ("ftp://cdn.example.com", "http(s) URL"),
    ("https://", "http(s) URL"),
    ("https://cdn.example.com/?v=1", "no query string or fragment"),
    ("https://cdn.example.com/#top", "no query string or fragment"),
    ("https://cdn.example.com:port", "not a valid URL"),
    ("https://user:pw@cdn.example.com", "credentials"),
])
def test_a_bad_media_cdn_base_url_is_named(value: str, says: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"MEDIAHUB_DATABASE_URL": PG, "MEDIAHUB_SECRET_KEY": SECRET,
                       "MEDIAHUB_STORAGE_URL": "s3://media-bucket",
                       "MEDIAHUB_MEDIA_CDN_BASE_URL": value})
    [problem] = caught.value.problems
    assert problem.startswith("MEDIAHUB_MEDIA_CDN_BASE_URL")
    assert says in problem


def test_a_media_cdn_needs_s3_storage() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"MEDIAHUB_DATABASE_URL": PG, "MEDIAHUB_SECRET_KEY": SECRET,
                       "MEDIAHUB_STORAGE_URL": "file:///var/media",
                       "MEDIAHUB_MEDIA_CDN_BASE_URL": "https://cdn.example.com"})
    [problem] = caught.value.problems
    assert problem.startswith("MEDIAHUB_MEDIA_CDN_BASE_URL: needs MEDIAHUB_STORAGE_URL=s3://")


def test_serve_with_a_bad_media_cdn_base_url_exits_2_and_says_why(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway import cli

    monkeypatch.setenv("MEDIAHUB_DATABASE_URL", PG)
    monkeypatch.setenv("MEDIAHUB_SECRET_KEY", SECRET)
    monkeypatch.setenv("MEDIAHUB_STORAGE_URL", "s3://media-bucket")
    monkeypatch.setenv("MEDIAHUB_MEDIA_CDN_BASE_URL", "https://cdn.example.com/?sig=1")
    with pytest.raises(SystemExit) as caught:
        cli.main(["serve"])
    assert caught.value.code == 2
    assert "MEDIAHUB_MEDIA_CDN_BASE_URL" in capsys.readouterr().err


def test_a_database_url_with_sslmode_is_refused_naming_the_ssl_parameter() -> None:
    # asyncpg takes the URL's query as keywords: `sslmode=` would fail at the first connect.
    with pytest.raises(SettingsError) as caught:
        load_settings({"MEDIAHUB_DATABASE_URL": f"{PG}?sslmode=require",
                       "MEDIAHUB_SECRET_KEY": SECRET})
    [problem] = caught.value.problems
    assert "ssl=require" in problem
    assert "pw@" not in problem
    tls = load_settings({"MEDIAHUB_DATABASE_URL": f"{PG}?ssl=verify-full",
                         "MEDIAHUB_SECRET_KEY": SECRET})
    assert tls.database_url.endswith("?ssl=verify-full")
