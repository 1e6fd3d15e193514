"""limits: daily spend counters, generations' spend day, the concurrency index

Revision ID: 0004_limits
Revises: 0003
Create Date: 2026-11-27 10:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004_limits'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tenant_daily_spend',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('spent_mc', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('spent_mc >= 0', name=op.f('ck_tenant_daily_spend_spent_not_negative')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_daily_spend_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'day', name=op.f('pk_tenant_daily_spend'))
    )
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spend_day', sa.Date(), nullable=True))
        batch_op.create_index('ix_generations_tenant_type_status', ['tenant_id', 'type', 'status'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_index('ix_generations_tenant_type_status')
        batch_op.drop_column('spend_day')
    op.drop_table('tenant_daily_spend')
