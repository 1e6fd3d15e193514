"""push: web push subscriptions of customers

Revision ID: 0018_push
Revises: 0017_gallery
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018_push'
down_revision: str | None = '0017_gallery'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'push_subscriptions',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=True),
        sa.Column('endpoint', sa.Text(), nullable=False),
        sa.Column('p256dh', sa.String(length=128), nullable=False),
        sa.Column('auth', sa.String(length=64), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_push_subscriptions_customer_id_customers'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_push_subscriptions_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_push_subscriptions')),
        sa.UniqueConstraint('tenant_id', 'customer_id', 'endpoint',
                            name=op.f('uq_push_subscriptions_tenant_id_customer_id_endpoint')),
    )
    op.create_index('ix_push_subscriptions_tenant_customer', 'push_subscriptions',
                    ['tenant_id', 'customer_id'])


def downgrade() -> None:
    op.drop_index('ix_push_subscriptions_tenant_customer', table_name='push_subscriptions')
    op.drop_table('push_subscriptions')
