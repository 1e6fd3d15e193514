"""voice clones: which tenant (and customer) owns each voice cloned at a provider

Revision ID: 0011_params
Revises: 0010_isolation
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011_params'
down_revision: str | None = '0010_isolation'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'voice_clones',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.String(length=32), nullable=True),
        sa.Column('provider', sa.String(length=64), nullable=False),
        sa.Column('voice_id', sa.String(length=128), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('generation_id', sa.String(length=32), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_voice_clones_customer_id_customers')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE',
                                name=op.f('fk_voice_clones_tenant_id_tenants')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_voice_clones')),
        sa.UniqueConstraint('provider', 'voice_id',
                            name=op.f('uq_voice_clones_provider_voice_id')),
    )
    op.create_index('ix_voice_clones_tenant_provider', 'voice_clones',
                    ['tenant_id', 'provider'])


def downgrade() -> None:
    op.drop_index('ix_voice_clones_tenant_provider', table_name='voice_clones')
    op.drop_table('voice_clones')
