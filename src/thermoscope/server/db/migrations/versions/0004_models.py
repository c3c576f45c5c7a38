"""Projects hold model releases (one active); frames keep what the project's model said: its
score, the score's distance from the threshold (for the uncertainty order of the review queue),
the model's name and version and the blob key of its heat map.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "model_releases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("blob_key", sa.String(length=300), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("signed", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "version", name="uq_model_releases_project_version"),
    )
    op.create_index(
        op.f("ix_model_releases_project_id"), "model_releases", ["project_id"], unique=False
    )
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("model_score", sa.Float(), nullable=True))
        batch.add_column(sa.Column("model_margin", sa.Float(), nullable=True))
        batch.add_column(sa.Column("model_version", sa.String(length=160), nullable=True))
        batch.add_column(sa.Column("heatmap_key", sa.String(length=300), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("frames") as batch:
        batch.drop_column("heatmap_key")
        batch.drop_column("model_version")
        batch.drop_column("model_margin")
        batch.drop_column("model_score")
    op.drop_index(op.f("ix_model_releases_project_id"), table_name="model_releases")
    op.drop_table("model_releases")
