"""isolation: idempotency keys scoped to (tenant, customer)

Revision ID: 0010_isolation
Revises: 0009_routing
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010_isolation'
down_revision: str | None = '0009_routing'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A customer's key and the tenant's own (no customer) are distinct keys. Customer keys:
    # unique per (tenant, customer, key); the tenant's: a partial unique index, since NULL
    # customers never collide in a unique constraint.
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_generations_tenant_id_idempotency_key', type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_generations_tenant_id_customer_id_idempotency_key'),
            ['tenant_id', 'customer_id', 'idempotency_key'])
    op.create_index('uq_generations_tenant_idempotency_key', 'generations',
                    ['tenant_id', 'idempotency_key'], unique=True,
                    sqlite_where=sa.text('customer_id IS NULL'),
                    postgresql_where=sa.text('customer_id IS NULL'))


def downgrade() -> None:
    # Fails when two customers of one tenant used the same key: then they are not one key.
    op.drop_index('uq_generations_tenant_idempotency_key', table_name='generations')
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_constraint('uq_generations_tenant_id_customer_id_idempotency_key',
                                 type_='unique')
        batch_op.create_unique_constraint(
            batch_op.f('uq_generations_tenant_id_idempotency_key'),
            ['tenant_id', 'idempotency_key'])
