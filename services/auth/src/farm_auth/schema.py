"""`python -m farm_auth.schema show|migrate`: the auth tables' migration (farm db)."""

from farm_auth.store import MIGRATIONS, VERSION_TABLE
from farm_core.schema import schema_main

if __name__ == "__main__":
    schema_main("auth", MIGRATIONS, VERSION_TABLE)
