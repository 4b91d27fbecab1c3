"""Labels stored with a NUL in them get U+FFFD in its place.

Before requests with a NUL were refused, a label value could carry one, stored as
`\\u0000` in the JSON. PostgreSQL cannot turn that into text: every label filter
(`labels ->> 'k'`) that read such a row failed, so one task made its tenant's
filtered lists (and any other the planner ran past that row) a 500.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NUL = "\x00"
_REPLACEMENT = "\ufffd"


def _without_nul(text: str) -> str:
    return text.replace(_NUL, _REPLACEMENT)


def upgrade() -> None:
    bind = op.get_bind()
    for name in ("tasks", "sessions"):
        table = sa.table(name, sa.column("id", sa.String), sa.column("labels", sa.JSON))
        as_text = sa.cast(table.c.labels, sa.Text)
        # Only rows whose JSON holds the escape (json.dumps always writes NUL as \u0000).
        rows = bind.execute(
            sa.select(table.c.id, as_text).where(as_text.contains("\\u0000", autoescape=True))
        ).all()
        for row_id, text in rows:
            labels = json.loads(text)
            if not isinstance(labels, dict):
                continue
            fixed = {
                _without_nul(key): _without_nul(value) if isinstance(value, str) else value
                for key, value in labels.items()
            }
            if fixed != labels:
                bind.execute(sa.update(table).where(table.c.id == row_id).values(labels=fixed))


def downgrade() -> None:
    # The NULs are gone for good; nothing to undo.
    pass
