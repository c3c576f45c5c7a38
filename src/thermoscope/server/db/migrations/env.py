"""Alembic environment: runs on the connection the server hands over (see ``db.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from thermoscope.server.db.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    """Run the migrations on the given connection, or on ``sqlalchemy.url`` from the config."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
