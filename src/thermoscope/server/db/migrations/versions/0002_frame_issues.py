"""Frames keep the problems their file had that did not stop ingest (a truncated last frame).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("issues", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("frames") as batch:
        batch.drop_column("issues")
