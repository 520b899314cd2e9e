"""Cell SIP secrets at rest: digest hashes (HA1) instead of clear passwords.

Revision ID: 0007
Revises: 0006

Each cell's clear ``sip_password`` becomes ``sip_md5_cred`` = MD5(sip_username:realm:password)
with ``sip_realm`` = 'callcontrol' (the realm the rendered pjsip_cells.conf names), so that a
handset keeps its password and still authenticates once `callcontrol asterisk sync` has run.
The hash is computed here in Python (SQLite has no md5()), the same on both databases.

Downgrade cannot give the clear passwords back (that is the point): each cell gets a new random
password, which nobody knows; set new ones with `callcontrol cell set-password` after it.
(API tokens live in the tokens file, as hashes, not in the database: see adapters/http/auth.py.)
"""

from __future__ import annotations

import hashlib
import secrets
import string
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REALM = "callcontrol"  # written out: the migration stays what it was if the code changes

cells = sa.table(
    "cells",
    sa.column("id", sa.BigInteger),
    sa.column("sip_username", sa.String),
    sa.column("sip_password", sa.String),
    sa.column("sip_realm", sa.String),
    sa.column("sip_md5_cred", sa.String),
)


def _ha1(username: str, password: str) -> str:
    return hashlib.md5(f"{username}:{REALM}:{password}".encode(), usedforsecurity=False).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("cells") as batch:
        batch.add_column(sa.Column("sip_realm", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("sip_md5_cred", sa.String(length=32), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.select(cells.c.id, cells.c.sip_username, cells.c.sip_password)).all()
    for row in rows:
        conn.execute(
            cells.update()
            .where(cells.c.id == row.id)
            .values(sip_realm=REALM, sip_md5_cred=_ha1(row.sip_username, row.sip_password))
        )
    with op.batch_alter_table("cells") as batch:
        batch.alter_column("sip_realm", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("sip_md5_cred", existing_type=sa.String(length=32), nullable=False)
        batch.drop_column("sip_password")


def downgrade() -> None:
    alphabet = string.ascii_letters + string.digits
    with op.batch_alter_table("cells") as batch:
        batch.add_column(sa.Column("sip_password", sa.String(length=128), nullable=True))
    conn = op.get_bind()
    for (cell_id,) in conn.execute(sa.select(cells.c.id)).all():
        unknown = "".join(secrets.choice(alphabet) for _ in range(24))
        conn.execute(cells.update().where(cells.c.id == cell_id).values(sip_password=unknown))
    with op.batch_alter_table("cells") as batch:
        batch.alter_column("sip_password", existing_type=sa.String(length=128), nullable=False)
        batch.drop_column("sip_md5_cred")
        batch.drop_column("sip_realm")
