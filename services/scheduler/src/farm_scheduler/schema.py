"""`python -m farm_scheduler.schema show|migrate`: the scheduler tables' migration (farm db)."""

from farm_core.schema import schema_main
from farm_scheduler.store import MIGRATIONS, VERSION_TABLE

if __name__ == "__main__":
    schema_main("scheduler", MIGRATIONS, VERSION_TABLE)
