"""The database connection managers inside whole runs: the planner reports their connection
strings' problems, and a run leaves no connection open, whether it succeeds or fails."""

from __future__ import annotations

import pytest

from dtsx.engine.errors import PackageValidationError
from tests.dbservers import PostgresDatabase
from tests.tasks._execute_sql_kit import Sql, package, plan_of, result_of, run_xml


def _open_connections(db: PostgresDatabase) -> int:
    with db.cluster.admin() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (db.database,)
        ).fetchone()
    return int(row[0])


def test_validation_names_a_misspelt_key_with_the_key_it_meant():
    xml = package(
        [Sql("Q", "SELECT 1")],
        connections={"DB": ("OLEDB", "Provider=SQLNCLI11.1;Data Source=.;Initial Catlog=Dw;")},
    )
    with pytest.raises(PackageValidationError) as caught:
        plan_of(xml)
    message = str(caught.value)
    assert "'Initial Catlog'" in message and "did you mean 'Initial Catalog'?" in message


def test_validation_refuses_a_provider_without_a_driver_and_names_the_fix():
    xml = package(
        [Sql("Q", "SELECT 1")],
        connections={"DB": ("OLEDB", "Provider=Microsoft.Jet.OLEDB.4.0;Data Source=C:\\a.mdb;")},
    )
    with pytest.raises(PackageValidationError, match=r"Jet/ACE.*--conn \"DB=URL\""):
        plan_of(xml)


@pytest.mark.parametrize("fails", [False, True])
def test_a_run_closes_every_connection_it_opened(postgres_db: PostgresDatabase, fails: bool):
    last = "SELECT 1/0" if fails else "SELECT 1"
    steps = [Sql("Make", "CREATE TABLE t(a int)"), Sql("Add", "INSERT INTO t VALUES (1)")]
    steps.append(Sql("Last", last))
    xml = package(steps, connections={"DB": ("OLEDB", postgres_db.url)})
    result = run_xml(xml)
    assert result_of(result, "Last") == ("Failure" if fails else "Success")
    assert postgres_db.scalar("SELECT count(*) FROM t") == 1  # autocommit: kept either way
    assert _open_connections(postgres_db) == 0


def test_a_retained_connection_is_closed_at_the_end_of_the_run(postgres_db: PostgresDatabase):
    steps = [Sql("Begin", "BEGIN"), Sql("Make", "CREATE TABLE t(a int)"), Sql("End", "COMMIT")]
    xml = package(steps, connections={"DB": ("OLEDB", postgres_db.url)}, retain=True)
    result = run_xml(xml)
    assert result_of(result, "End") == "Success"
    assert postgres_db.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 't'") == 1
    assert _open_connections(postgres_db) == 0
