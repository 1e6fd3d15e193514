"""scale: a partial index for the purge requeue, so periodic queries stay index-bound

Revision ID: 0024_scale
Revises: 0023_suggestions
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0024_scale'
down_revision: str | None = '0023_suggestions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PURGE_PENDING = "deleted_at IS NOT NULL AND CAST(outputs AS TEXT) <> '[]'"


def upgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.create_index('ix_generations_purge_pending', ['deleted_at'], unique=False,
                              sqlite_where=sa.text(PURGE_PENDING),
                              postgresql_where=sa.text(PURGE_PENDING))


def downgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_index('ix_generations_purge_pending')
