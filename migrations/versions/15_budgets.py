"""budgets: monthly budgets per API key and per customer, a key's own rate limit, the
customers' search key

Revision ID: 0015_budgets
Revises: 0014_selfserve
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015_budgets'
down_revision: str | None = '0014_selfserve'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'monthly_spend',
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('subject_kind', sa.String(length=16), nullable=False),
        sa.Column('subject_id', sa.String(length=32), nullable=False),
        sa.Column('month', sa.Date(), nullable=False),
        sa.Column('spent_mc', sa.BigInteger(), nullable=False),
        sa.CheckConstraint('spent_mc >= 0', name=op.f('ck_monthly_spend_spent_not_negative')),
        sa.CheckConstraint("subject_kind IN ('key', 'customer')",
                           name=op.f('ck_monthly_spend_subject_kind')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_monthly_spend_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', 'subject_kind', 'subject_id', 'month',
                                name=op.f('pk_monthly_spend')),
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('monthly_budget_mc', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('rate_limit_rpm', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('rate_limit_burst', sa.Integer(), nullable=True))
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('monthly_budget_mc', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('search_key', sa.String(length=200), nullable=True))
    op.execute("UPDATE customers SET search_key = lower(external_id)")
    op.create_index('ix_customers_tenant_search', 'customers', ['tenant_id', 'search_key'],
                    postgresql_ops={'search_key': 'text_pattern_ops'})
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('key_budget_month', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('customer_budget_month', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_column('customer_budget_month')
        batch_op.drop_column('key_budget_month')
    op.drop_index('ix_customers_tenant_search', table_name='customers')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('search_key')
        batch_op.drop_column('monthly_budget_mc')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_column('rate_limit_burst')
        batch_op.drop_column('rate_limit_rpm')
        batch_op.drop_column('monthly_budget_mc')
    op.drop_table('monthly_spend')
