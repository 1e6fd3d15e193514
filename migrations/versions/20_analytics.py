"""analytics: usage rollups, their zones and watermark, tenants' time zone

Revision ID: 0020_analytics
Revises: 0019_locale
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0020_analytics'
down_revision: str | None = '0019_locale'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('time_zone', sa.String(length=64), server_default='UTC',
                                      nullable=False))
    op.create_table(
        'usage_rollups',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('customer_id', sa.String(length=32), nullable=True),
        sa.Column('team_id', sa.String(length=32), nullable=True),
        sa.Column('api_key_id', sa.String(length=32), nullable=True),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('provider', sa.String(length=64), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('succeeded', sa.Integer(), nullable=False),
        sa.Column('failed', sa.Integer(), nullable=False),
        sa.Column('canceled', sa.Integer(), nullable=False),
        sa.Column('cached', sa.Integer(), nullable=False),
        sa.Column('charged_mc', sa.BigInteger(), nullable=False),
        sa.Column('wholesale_mc', sa.BigInteger(), nullable=False),
        sa.Column('cost_usd_micros', sa.BigInteger(), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('failovers', sa.Integer(), nullable=False),
        sa.Column('latency_buckets',
                  sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                  nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_usage_rollups_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_usage_rollups')),
    )
    op.create_index('ix_usage_rollups_tenant_day', 'usage_rollups', ['tenant_id', 'day'],
                    unique=False)
    op.create_table(
        'usage_zones',
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('time_zone', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_usage_zones_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_usage_zones')),
    )
    op.create_table(
        'usage_watermarks',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_usage_watermarks')),
    )
    # The rollups read a tenant's generation transfers of a period (grants, purchases and
    # refunds, which name no generation, are left out of the index).
    op.create_index('ix_transfers_tenant_generation_created', 'transfers',
                    ['tenant_id', 'created_at'], unique=False,
                    postgresql_where=sa.text('generation_id IS NOT NULL'),
                    sqlite_where=sa.text('generation_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_transfers_tenant_generation_created', table_name='transfers',
                  postgresql_where=sa.text('generation_id IS NOT NULL'),
                  sqlite_where=sa.text('generation_id IS NOT NULL'))
    op.drop_table('usage_watermarks')
    op.drop_table('usage_zones')
    op.drop_index('ix_usage_rollups_tenant_day', table_name='usage_rollups')
    op.drop_table('usage_rollups')
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
