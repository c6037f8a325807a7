"""Several engines on one database: execution ownership, claims of orphans, forwarded
signals (see :mod:`tether.persistence.ownership` for the rule, and ``keeper``,
``shared_engine`` and ``inbox`` here for the engine's side)."""

from tether.runtime.ownership.keeper import KeeperHooks, OwnershipKeeper
from tether.runtime.ownership.shared_engine import SharedEngine, new_engine_id, ownership_of

__all__ = ["KeeperHooks", "OwnershipKeeper", "SharedEngine", "new_engine_id", "ownership_of"]
