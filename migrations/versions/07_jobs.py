"""jobs: a lease on running generations, for polling jobs and crash recovery

Revision ID: 0007_jobs
Revises: 0005_webhooks
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007_jobs'
down_revision: str | None = '0005_webhooks'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing running rows get no lease: the reconciler treats them as expired.
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('lease_seq', sa.Integer(), nullable=False,
                                      server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_column('lease_seq')
        batch_op.drop_column('lease_until')
