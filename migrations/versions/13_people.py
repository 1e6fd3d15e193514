"""people: users, their sessions and one-time tokens

Revision ID: 0013_people
Revises: 0012_audit
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013_people'
down_revision: str | None = '0012_audit'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'users',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=True),
        sa.Column('password_hash', sa.String(length=255), nullable=True),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('customer_id', sa.String(length=32), nullable=True),
        sa.Column('email_verified_at', TS, nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('disabled_at', TS, nullable=True),
        sa.CheckConstraint(
            "role IN ('owner', 'admin', 'developer', 'billing', 'viewer', 'customer')",
            name=op.f('ck_users_role')),
        sa.CheckConstraint("(role = 'customer') = (customer_id IS NOT NULL)",
                           name=op.f('ck_users_customer_link')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_users_tenant_id_tenants'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_users_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
        sa.UniqueConstraint('tenant_id', 'email', name=op.f('uq_users_tenant_id_email')),
    )
    op.create_index('ix_users_tenant_customer', 'users', ['tenant_id', 'customer_id'])
    op.create_table(
        'user_sessions',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('last_seen_at', TS, nullable=False),
        sa.Column('expires_at', TS, nullable=False),
        sa.Column('user_agent', sa.String(length=200), nullable=False),
        sa.Column('ip_address', sa.String(length=64), nullable=False),
        sa.Column('method', sa.String(length=16), nullable=False),
        sa.Column('revoked_at', TS, nullable=True),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_user_sessions_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_user_sessions_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_sessions')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_user_sessions_token_hash')),
    )
    op.create_index('ix_user_sessions_user_created', 'user_sessions',
                    ['user_id', 'created_at', 'id'])
    op.create_table(
        'one_time_tokens',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('purpose', sa.String(length=16), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=True),
        sa.Column('customer_id', sa.String(length=32), nullable=True),
        sa.Column('redirect_to', sa.String(length=2000), nullable=True),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('expires_at', TS, nullable=False),
        sa.Column('used_at', TS, nullable=True),
        sa.CheckConstraint("purpose IN ('verify', 'reset', 'magic', 'portal', 'invite')",
                           name=op.f('ck_one_time_tokens_purpose')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_one_time_tokens_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_one_time_tokens_user_id_users'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['customer_id'], ['customers.id'],
                                name=op.f('fk_one_time_tokens_customer_id_customers')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_one_time_tokens')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_one_time_tokens_token_hash')),
    )
    op.create_index('ix_one_time_tokens_user', 'one_time_tokens', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_one_time_tokens_user', table_name='one_time_tokens')
    op.drop_table('one_time_tokens')
    op.drop_index('ix_user_sessions_user_created', table_name='user_sessions')
    op.drop_table('user_sessions')
    op.drop_index('ix_users_tenant_customer', table_name='users')
    op.drop_table('users')
