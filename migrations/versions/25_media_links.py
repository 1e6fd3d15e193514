"""media links: whether a tenant's media gets permanent CDN links

Revision ID: 0025_media_links
Revises: 0024_scale
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0025_media_links'
down_revision: str | None = '0024_scale'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # Existing tenants get the default (an empty object: signed, expiring links only).
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('media', JSON, nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('media')
