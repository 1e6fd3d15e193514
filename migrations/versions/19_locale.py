"""locale: a user's language preference (the portal's `en` or `ar`)

Revision ID: 0019_locale
Revises: 0018_push
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019_locale'
down_revision: str | None = '0018_push'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: a user who never chose follows the browser (and the tenant's default).
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('locale', sa.String(length=8), nullable=True))
        batch_op.create_check_constraint(op.f('ck_users_locale'), "locale IN ('en', 'ar')")


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint('ck_users_locale', type_='check')
        batch_op.drop_column('locale')
