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


@pytest.mark.parametrize("password", ["Xy9Q/Zk4w", "12/Xy9Q", "a@Xy9Q", "Xy9Q/a?b@Zk4w"])
def test_a_password_libpq_cuts_shows_no_piece_of_it(password):
    # libpq's userinfo ends at the first '/' or '@': the rest became the host, port or database, which the
    # message named (`PostgreSQL at hive:Xy9Q/...`) and libpq quoted (`invalid integer value "Xy9Q"`)
    url = f"postgresql://hive:{password}@127.0.0.1:1/ferretdb?sslmode=disable"
    assert postgresql_where(url) == "127.0.0.1:1/ferretdb"
    with pytest.raises(StoreUnavailable) as err:
        ensure_lookup_indexes(url, "neural_hive")
    assert str(err.value).startswith("PostgreSQL at 127.0.0.1:1/ferretdb is unavailable: ")
    assert not any(piece in str(err.value) for piece in ("Xy9Q", "Zk4w", "***")), str(err.value)


def test_the_reason_of_a_string_libpq_cannot_read_is_not_shown():
    with pytest.raises(StoreUnavailable) as err:
        ensure_lookup_indexes("host=127.0.0.1 port=1 password=S3cr3t Xy9QZk4w", "neural_hive")  # 'missing "="'
    assert "Xy9QZk4w" not in str(err.value) and "S3cr3t" not in str(err.value)
