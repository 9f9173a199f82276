"""Where the ledger lives: one setting, read from the padlock config file.

Called by `padlock ca serve`, `padlock ocsp serve` and `padlock ledger verify`, which pass
`LedgerConfig.url` to `padlock.ledger.ledger.Ledger` or `padlock.ledger.verify.verify_chain`.
"""

from __future__ import annotations

import dataclasses

DEFAULT_URL = "sqlite:///.padlock/ledger.db"


@dataclasses.dataclass(frozen=True)
class LedgerConfig:
    """The ledger's database.

    url: a SQLAlchemy URL. `sqlite:///PATH` (relative to the working directory; the parent
        directory is created) is the embedded default; `postgresql+psycopg://USER@HOST/DB` is
        the production backend (`postgresql://` is accepted and means the same driver).
    """

    url: str = DEFAULT_URL
