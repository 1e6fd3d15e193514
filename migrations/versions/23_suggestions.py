"""suggestions: a tenant's model-written prompt suggestions setting

Revision ID: 0023_suggestions
Revises: 0022_brand_kits
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0023_suggestions'
down_revision: str | None = '0022_brand_kits'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # Existing tenants get the default (an empty object: no model suggestions).
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suggestions', JSON, nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('suggestions')
