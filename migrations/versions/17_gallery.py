"""gallery: generations' favourite flag, soft delete and full-text search over prompts

Revision ID: 0017_gallery
Revises: 0016_teams
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017_gallery'
down_revision: str | None = '0016_teams'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Existing rows are nobody's favourite: a server default fills them; the model sets it.
    op.add_column('generations', sa.Column('favourite', sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    op.add_column('generations', sa.Column('deleted_at', TS, nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        # 'simple': no stemming or stop words, so any language (Arabic too) is matched word
        # for word. Generated, so no code path can forget to keep it current.
        op.execute("ALTER TABLE generations ADD COLUMN search_vector tsvector "
                   "GENERATED ALWAYS AS (to_tsvector('simple', coalesce(prompt, ''))) STORED")
        op.execute("CREATE INDEX ix_generations_search ON generations USING gin (search_vector)")
    else:
        # An external-content FTS5 index over the prompt, keyed by the row's rowid and kept
        # by triggers (SQLite keeps rowids of a table without INTEGER PRIMARY KEY unless it
        # is VACUUMed; after a VACUUM run `INSERT INTO generations_fts(generations_fts)
        # VALUES ('rebuild')`, docs/gallery.md).
        op.execute("CREATE VIRTUAL TABLE generations_fts USING fts5("
                   "prompt, content='generations', content_rowid='rowid')")
        op.execute("CREATE TRIGGER generations_fts_ai AFTER INSERT ON generations BEGIN "
                   "INSERT INTO generations_fts(rowid, prompt) VALUES (new.rowid, new.prompt); "
                   "END")
        op.execute("CREATE TRIGGER generations_fts_ad AFTER DELETE ON generations BEGIN "
                   "INSERT INTO generations_fts(generations_fts, rowid, prompt) "
                   "VALUES ('delete', old.rowid, old.prompt); END")
        op.execute("CREATE TRIGGER generations_fts_au AFTER UPDATE OF prompt ON generations "
                   "BEGIN "
                   "INSERT INTO generations_fts(generations_fts, rowid, prompt) "
                   "VALUES ('delete', old.rowid, old.prompt); "
                   "INSERT INTO generations_fts(rowid, prompt) VALUES (new.rowid, new.prompt); "
                   "END")
        op.execute("INSERT INTO generations_fts(generations_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_generations_search")
        op.execute("ALTER TABLE generations DROP COLUMN IF EXISTS search_vector")
    else:
        for trigger in ('generations_fts_ai', 'generations_fts_ad', 'generations_fts_au'):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS generations_fts")
    with op.batch_alter_table('generations') as batch:
        batch.drop_column('deleted_at')
        batch.drop_column('favourite')
