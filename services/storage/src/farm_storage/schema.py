"""`python -m farm_storage.schema show|migrate`: the storage tables' migration (farm db)."""

from farm_core.schema import schema_main
from farm_storage.store import MIGRATIONS, VERSION_TABLE

if __name__ == "__main__":
    schema_main("storage", MIGRATIONS, VERSION_TABLE)
