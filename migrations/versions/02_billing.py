"""billing modes, packages, purchases, stripe events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 10:34:00.692830
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('stripe_events',
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=100), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stripe_events'))
    )
    op.create_table('credit_packages',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('credits_mc', sa.BigInteger(), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('credits_mc > 0 AND price_cents > 0', name=op.f('ck_credit_packages_positive')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_credit_packages_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_packages'))
    )
    with op.batch_alter_table('credit_packages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credit_packages_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('ledger_events',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_ledger_events_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_events'))
    )
    with op.batch_alter_table('ledger_events', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_events_tenant_created', ['tenant_id', 'created_at'], unique=False)

    op.create_table('purchases',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=32), nullable=False),
    sa.Column('package_id', sa.String(length=32), nullable=False),
    sa.Column('credits_mc', sa.BigInteger(), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('session_id', sa.String(length=255), nullable=True),
    sa.Column('payment_intent', sa.String(length=255), nullable=True),
    sa.Column('checkout_url', sa.Text(), nullable=True),
    sa.Column('refunded_cents', sa.BigInteger(), nullable=False),
    sa.Column('clawed_back_mc', sa.BigInteger(), nullable=False),
    sa.Column('owed_mc', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_purchases_account_id_accounts')),
    sa.ForeignKeyConstraint(['package_id'], ['credit_packages.id'], name=op.f('fk_purchases_package_id_credit_packages')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_purchases_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_purchases')),
    sa.UniqueConstraint('session_id', name=op.f('uq_purchases_session_id'))
    )
    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_purchases_payment_intent'), ['payment_intent'], unique=False)

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('system', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))

    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('customer_reservation_id', sa.String(length=32), nullable=True))

    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('billing_mode', sa.String(length=16), nullable=False,
                                      server_default='self'))
        batch_op.add_column(sa.Column('low_balance_threshold_mc', sa.BigInteger(),
                                      nullable=False, server_default='0'))
        batch_op.create_check_constraint('billing_mode', "billing_mode IN ('self', 'mediahub')")

    # System accounts keep no counters any more: their balances are summed from transfers.
    # The old per-tenant `revenue` account becomes `platform_revenue`; `tenant_revenue` is new.
    op.execute("UPDATE accounts SET code = 'platform_revenue' WHERE code = 'revenue'")
    op.execute("UPDATE accounts SET system = true, debits_posted = 0, credits_posted = 0, "
               "debits_pending = 0, credits_pending = 0 "
               "WHERE code IN ('funding', 'platform_revenue')")
    op.execute(
        "INSERT INTO accounts (id, tenant_id, code, no_overdraft, system, debits_posted, "
        "credits_posted, debits_pending, credits_pending, created_at) "
        "SELECT 'acc_tr' || substr(id, 5), id, 'tenant_revenue', false, true, 0, 0, 0, 0, "
        "CURRENT_TIMESTAMP FROM tenants")



def downgrade() -> None:
    op.execute("DELETE FROM accounts WHERE code = 'tenant_revenue'")
    op.execute("UPDATE accounts SET code = 'revenue' WHERE code = 'platform_revenue'")
    with op.batch_alter_table('tenants', schema=None) as batch_op:
        batch_op.drop_constraint('ck_tenants_billing_mode', type_='check')
        batch_op.drop_column('low_balance_threshold_mc')
        batch_op.drop_column('billing_mode')

    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_column('customer_reservation_id')

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('system')

    with op.batch_alter_table('purchases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_purchases_payment_intent'))

    op.drop_table('purchases')
    with op.batch_alter_table('ledger_events', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_events_tenant_created')

    op.drop_table('ledger_events')
    with op.batch_alter_table('credit_packages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credit_packages_tenant_id'))

    op.drop_table('credit_packages')
    op.drop_table('stripe_events')
