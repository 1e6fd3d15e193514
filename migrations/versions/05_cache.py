"""result cache and coalescing: tenant cache policy, generation fingerprint and leader

Revision ID: 0006_cache
Revises: 0004_limits
Create Date: 2026-12-01 10:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0006_cache'
down_revision: str | None = '0004_limits'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # Existing tenants keep the default policy (an empty object); existing generations have
    # no fingerprint (never served from the cache) and lead nobody.
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cache', JSON, nullable=False, server_default='{}'))

    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('coalesced_from', sa.String(length=32), nullable=True))
        batch_op.create_index('ix_generations_tenant_coalesced', ['tenant_id', 'coalesced_from'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_index('ix_generations_tenant_coalesced')
        batch_op.drop_column('coalesced_from')
        batch_op.drop_column('fingerprint')

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('cache')
