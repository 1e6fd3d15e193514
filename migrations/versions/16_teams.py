"""teams: teams, members, invitations, allocation spend counters; generations' team

Revision ID: 0016_teams
Revises: 0015_budgets
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0016_teams'
down_revision: str | None = '0015_budgets'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'teams',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('created_by', sa.String(length=32), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['customers.id'],
                                name=op.f('fk_teams_created_by_customers')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_teams_tenant_id_tenants'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_teams')),
    )
    op.create_index('ix_teams_tenant_created', 'teams', ['tenant_id', 'created_at', 'id'])
    op.create_table(
        'team_members',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.String(length=32), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('allocation_mc', sa.BigInteger(), nullable=True),
        sa.Column('allocation_period', sa.String(length=8), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('removed_at', TS, nullable=True),
        sa.CheckConstraint("role IN ('owner', 'admin', 'member', 'viewer')",
                           name=op.f('ck_team_members_role')),
        sa.CheckConstraint("allocation_period IN ('month', 'total')",
                           name=op.f('ck_team_members_allocation_period')),
        sa.CheckConstraint('allocation_mc IS NULL OR allocation_mc >= 0',
                           name=op.f('ck_team_members_allocation_not_negative')),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_team_members_customer_id_customers')),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'],
                                name=op.f('fk_team_members_team_id_teams'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_team_members_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_team_members')),
        sa.UniqueConstraint('team_id', 'customer_id',
                            name=op.f('uq_team_members_team_id_customer_id')),
    )
    op.create_index('ix_team_members_tenant_customer', 'team_members',
                    ['tenant_id', 'customer_id'])
    op.create_table(
        'team_invitations',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('invited_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('expires_at', TS, nullable=False),
        sa.Column('accepted_at', TS, nullable=True),
        sa.Column('accepted_by', sa.String(length=32), nullable=True),
        sa.Column('revoked_at', TS, nullable=True),
        sa.CheckConstraint("role IN ('admin', 'member', 'viewer')",
                           name=op.f('ck_team_invitations_role')),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'],
                                name=op.f('fk_team_invitations_team_id_teams'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_team_invitations_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_team_invitations')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_team_invitations_token_hash')),
    )
    op.create_index('ix_team_invitations_team_created', 'team_invitations',
                    ['team_id', 'created_at', 'id'])
    op.create_table(
        'team_allocation_spend',
        sa.Column('team_id', sa.String(length=32), nullable=False),
        sa.Column('customer_id', sa.String(length=32), nullable=False),
        sa.Column('period', sa.String(length=16), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('spent_mc', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('spent_mc >= 0',
                           name=op.f('ck_team_allocation_spend_spent_not_negative')),
        sa.ForeignKeyConstraint(['team_id'], ['teams.id'],
                                name=op.f('fk_team_allocation_spend_team_id_teams'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_team_allocation_spend_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('team_id', 'customer_id', 'period',
                                name=op.f('pk_team_allocation_spend')),
    )
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('team_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('team_period', sa.String(length=16), nullable=True))
        batch_op.create_index('ix_generations_tenant_team_created',
                              ['tenant_id', 'team_id', 'created_at', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_index('ix_generations_tenant_team_created')
        batch_op.drop_column('team_period')
        batch_op.drop_column('team_id')
    op.drop_table('team_allocation_spend')
    op.drop_index('ix_team_invitations_team_created', table_name='team_invitations')
    op.drop_table('team_invitations')
    op.drop_index('ix_team_members_tenant_customer', table_name='team_members')
    op.drop_table('team_members')
    op.drop_index('ix_teams_tenant_created', table_name='teams')
    op.drop_table('teams')
