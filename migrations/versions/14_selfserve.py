"""self-service: the operator's caps on a tenant, domain verification

Revision ID: 0014_selfserve
Revises: 0013_people
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0014_selfserve'
down_revision: str | None = '0013_people'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # Existing tenants get no ceilings beyond the default (an empty object).
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('caps', JSON, nullable=False, server_default='{}'))

    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verification_token', sa.String(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('verified_at', TS, nullable=True))
    # Every existing domain was set by the operator, who is trusted: verified.
    op.execute("UPDATE domains SET verified_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.drop_column('verified_at')
        batch_op.drop_column('verification_token')

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('caps')
