"""Run Alembic migrations from code (`mediahub db upgrade`, embedded start, tests)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Alembic's ini interpolation would read '%' in a password as syntax.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


@contextmanager
def _alembic_quiet() -> Iterator[None]:
    # Alembic logs every step at INFO: noise on an embedded start or in the demo, where
    # migrating is routine. Warnings and errors still show.
    logger = logging.getLogger("alembic")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def upgrade(database_url: str, revision: str = "head", *, quiet: bool = True) -> None:
    """Bring the database to `revision`; blocking, so async callers run it in a thread.

    Called by the embedded start, the demo and tests (quietly) and by `mediahub db upgrade`
    (`quiet=False`: it lists each migration it runs)."""
    if not quiet:
        command.upgrade(alembic_config(database_url), revision)
        return
    with _alembic_quiet():
        command.upgrade(alembic_config(database_url), revision)
