"""console: segment thresholds, tenant suspension, breaker history, webhook replays

Revision ID: 0021_console
Revises: 0020_analytics
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0021_console'
down_revision: str | None = '0020_analytics'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    # An empty object is the default thresholds (docs/analytics-segments.md).
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('analytics', JSON, nullable=False, server_default='{}'))
        batch_op.add_column(sa.Column('suspended_at', TS, nullable=True))
        batch_op.add_column(sa.Column('suspension_reason', sa.String(length=500),
                                      nullable=True))

    op.create_table(
        'provider_events',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('provider', sa.String(length=64), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('at', TS, nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.CheckConstraint("kind IN ('breaker_opened', 'breaker_closed')",
                           name=op.f('ck_provider_events_kind')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_events')),
    )
    op.create_index('ix_provider_events_at', 'provider_events', ['at', 'provider'])

    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('replay_of', sa.String(length=32), nullable=True))

    # Customer segments read each customer's generations of one tenant in time order.
    op.create_index('ix_generations_tenant_customer_created', 'generations',
                    ['tenant_id', 'customer_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_generations_tenant_customer_created', table_name='generations')
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_column('replay_of')
    op.drop_index('ix_provider_events_at', table_name='provider_events')
    op.drop_table('provider_events')
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('suspension_reason')
        batch_op.drop_column('suspended_at')
        batch_op.drop_column('analytics')
