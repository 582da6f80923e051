"""The PostgreSQL that FerretDB runs on (FERRETDB_POSTGRESQL_URL): an error names host, port and database,
never the connection string, whichever of libpq's forms carries the password."""

from __future__ import annotations

import pytest

from hive_assets.data.store._ferretdb_postgresql import ensure_lookup_indexes, postgresql_where
from hive_assets.data.store.base import StoreUnavailable

SECRET = "S3cr3tPW-audit"


@pytest.mark.parametrize("url", [
    f"host=127.0.0.1 port=1 user=hive password={SECRET} dbname=ferretdb",
    f"host=127.0.0.1 port=1 user=hive password='{SECRET} x' dbname=ferretdb",
    f"postgresql://hive@127.0.0.1:1/ferretdb?password={SECRET}",
    f"postgresql://hive:{SECRET}@127.0.0.1:1/ferretdb",
])
def test_an_unreachable_postgresql_is_named_without_its_password(url):
    assert postgresql_where(url) == "127.0.0.1:1/ferretdb"
    with pytest.raises(StoreUnavailable) as err:
        ensure_lookup_indexes(url, "neural_hive")  # nothing listens on port 1
    assert SECRET not in str(err.value) and "PostgreSQL at 127.0.0.1:1/ferretdb is unavailable" in str(err.value)


def test_a_string_libpq_cannot_read_is_not_shown():
    assert SECRET not in postgresql_where(f"hive {SECRET}")
