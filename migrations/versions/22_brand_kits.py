"""brand kits: kits, their versions and files; generations' brand kit and its version

Revision ID: 0022_brand_kits
Revises: 0021_console
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0022_brand_kits'
down_revision: str | None = '0021_console'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table(
        'brand_kits',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('owner_type', sa.String(length=16), nullable=False),
        sa.Column('owner_id', sa.String(length=32), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('content', JSON, nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.Column('updated_at', TS, nullable=False),
        sa.CheckConstraint("owner_type IN ('tenant', 'team', 'customer')",
                           name=op.f('ck_brand_kits_owner_type')),
        sa.CheckConstraint('version >= 1', name=op.f('ck_brand_kits_version_positive')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_brand_kits_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_kits')),
    )
    op.create_index('ix_brand_kits_tenant_created', 'brand_kits',
                    ['tenant_id', 'created_at', 'id'])
    op.create_index('ix_brand_kits_tenant_owner', 'brand_kits',
                    ['tenant_id', 'owner_type', 'owner_id'])
    op.create_table(
        'brand_kit_versions',
        sa.Column('kit_id', sa.String(length=32), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('snapshot', JSON, nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.ForeignKeyConstraint(['kit_id'], ['brand_kits.id'],
                                name=op.f('fk_brand_kit_versions_kit_id_brand_kits'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_brand_kit_versions_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('kit_id', 'version', name=op.f('pk_brand_kit_versions')),
    )
    op.create_table(
        'brand_assets',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('kit_id', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=8), nullable=False),
        sa.Column('filename', sa.String(length=255), nullable=False),
        sa.Column('content_type', sa.String(length=64), nullable=False),
        sa.Column('bytes', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('width', sa.Integer(), nullable=True),
        sa.Column('height', sa.Integer(), nullable=True),
        sa.Column('family', sa.String(length=200), nullable=True),
        sa.Column('storage_key', sa.String(length=512), nullable=False),
        sa.Column('created_at', TS, nullable=False),
        sa.CheckConstraint("kind IN ('font', 'logo')", name=op.f('ck_brand_assets_kind')),
        sa.ForeignKeyConstraint(['kit_id'], ['brand_kits.id'],
                                name=op.f('fk_brand_assets_kit_id_brand_kits'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'],
                                name=op.f('fk_brand_assets_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_brand_assets')),
    )
    op.create_index('ix_brand_assets_kit_created', 'brand_assets',
                    ['kit_id', 'created_at', 'id'])
    # No foreign key: a generation keeps naming the kit (and version) it was made with after
    # the kit is deleted.
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('brand_kit_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('brand_kit_version', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('generations', schema=None) as batch_op:
        batch_op.drop_column('brand_kit_version')
        batch_op.drop_column('brand_kit_id')
    op.drop_index('ix_brand_assets_kit_created', table_name='brand_assets')
    op.drop_table('brand_assets')
    op.drop_table('brand_kit_versions')
    op.drop_index('ix_brand_kits_tenant_owner', table_name='brand_kits')
    op.drop_index('ix_brand_kits_tenant_created', table_name='brand_kits')
    op.drop_table('brand_kits')
