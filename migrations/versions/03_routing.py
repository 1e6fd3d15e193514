"""routing: provider state, tenant strategy, generation candidates and attempts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 11:07:13.554450
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('providers',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('health', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('check_latency_ms', sa.Integer(), nullable=True),
    sa.Column('error_rate', sa.Float(), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('breaker', sa.String(length=16), nullable=False),
    sa.Column('breaker_opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('backoff_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('calls', sa.BigInteger(), nullable=False),
    sa.Column('failures', sa.BigInteger(), nullable=False),
    sa.Column('last_error', sa.String(length=64), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('latency_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_providers'))
    )
    # Existing rows: generations made before routing had one candidate and no recorded
    # attempts; tenants route `balanced` (an empty object).
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('candidates', JSON, nullable=False,
                                      server_default='[]'))
        batch_op.add_column(sa.Column('attempts_log', JSON, nullable=False,
                                      server_default='[]'))

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routing', JSON, nullable=False, server_default='{}'))


def downgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('routing')

    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_column('attempts_log')
        batch_op.drop_column('candidates')

    op.drop_table('providers')
