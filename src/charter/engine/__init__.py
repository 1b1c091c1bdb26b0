"""Charter's engine: materialized tables kept current by incremental maintenance.

See :class:`charter.engine.engine.Engine` for the API.
"""

from charter.engine.delta import Delta, RuleChange, TableDelta
from charter.engine.engine import Engine

__all__ = ["Engine", "Delta", "RuleChange", "TableDelta"]
