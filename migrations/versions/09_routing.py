"""routing: per-credential provider state (a tenant's own key has its own breaker)

Revision ID: 0009_routing
Revises: 0008_provider_keys
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_routing'
down_revision: str | None = '0008_provider_keys'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tenant_provider_states',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('provider', sa.String(length=64), nullable=False),
    sa.Column('latency_ms', sa.Integer(), nullable=True),
    sa.Column('error_rate', sa.Float(), nullable=False),
    sa.Column('consecutive_failures', sa.Integer(), nullable=False),
    sa.Column('breaker', sa.String(length=16), nullable=False),
    sa.Column('breaker_opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('backoff_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('calls', sa.BigInteger(), nullable=False),
    sa.Column('failures', sa.BigInteger(), nullable=False),
    sa.Column('last_error', sa.String(length=64), nullable=True),
    sa.Column('latency_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE',
                            name=op.f('fk_tenant_provider_states_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('tenant_id', 'provider', name=op.f('pk_tenant_provider_states'))
    )


def downgrade() -> None:
    op.drop_table('tenant_provider_states')
