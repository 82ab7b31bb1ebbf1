"""Connection strings and --conn URLs of the database connection managers -> driver targets.

No SQL Server runs here, so the SQL Server mappings are checked as targets (URL and connect
arguments); PostgreSQL, SQLite and ODBC targets are used live in test_database_sessions.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from dtsx.connections.base import CONNECTIONS, ConnectionSettings
from dtsx.connections.database import (
    AdoConnectionManager,
    AdoNetConnectionManager,
    OdbcConnectionManager,
    OleDbConnectionManager,
)
from dtsx.connections.db_strings import string_problems, target_for
from dtsx.engine.errors import ConnectionManagerError

SQLCLIENT = (
    "ADO.NET:System.Data.SqlClient.SqlConnection, System.Data, Version=4.0.0.0, "
    "Culture=neutral, PublicKeyToken=b77a5c561934e089"
)
SQLITE = (
    "ADO.NET:System.Data.SQLite.SQLiteConnection, System.Data.SQLite, Version=1.0.118.0, "
    "Culture=neutral, PublicKeyToken=db937bc2d44ff139"
)


def settings(creation: str, text: str, **properties: str) -> ConnectionSettings:
    # The loader keeps the creation name upper-cased (the spec's type_key): do as it does.
    return ConnectionSettings("CM", creation.upper(), text, properties=properties)


@pytest.mark.parametrize(
    ("creation", "cls"),
    [
        ("OLEDB", OleDbConnectionManager),
        ("oledb", OleDbConnectionManager),
        (SQLCLIENT, AdoNetConnectionManager),
        ("ADO.NET:SQL", AdoNetConnectionManager),
        ("ADO.NET:System.Data.Odbc.OdbcConnection, System.Data", AdoNetConnectionManager),
        (SQLITE.upper(), AdoNetConnectionManager),
        ("ODBC", OdbcConnectionManager),
        ("Odbc", OdbcConnectionManager),
        ("ADO", AdoConnectionManager),
    ],
)
def test_every_spelling_of_a_database_creation_name_finds_its_family(creation, cls):
    assert CONNECTIONS.get(creation) is cls


def test_an_oledb_sql_server_string_with_windows_authentication_maps_to_pymssql_kerberos():
    target = target_for(
        settings(
            "OLEDB",
            "Data Source=.;Initial Catalog=Shares;Provider=SQLNCLI11.1;"
            "Integrated Security=SSPI;Auto Translate=False;",
        )
    )
    assert (target.driver, target.dialect) == ("sqlalchemy", "mssql")
    url = target.url
    assert url.drivername == "mssql+pymssql"
    assert (url.host, url.port, url.database, url.username) == ("127.0.0.1", None, "Shares", None)
    assert target.integrated
    assert target.server == "127.0.0.1/Shares"


def test_sql_server_credentials_port_timeout_and_application_name_reach_the_driver():
    target = target_for(
        settings(
            "OLEDB",
            'Data Source=db01,1444;User ID=etl;Password="S3cr;et";Initial Catalog=Dw;'
            "Provider=MSOLEDBSQL;Connect Timeout=15;Application Name=SSIS-Nightly;",
        )
    )
    url = target.url
    assert (url.host, url.port, url.database, url.username) == ("db01", 1444, "Dw", "etl")
    assert url.password == "S3cr;et"
    assert dict(target.connect_args) == {"login_timeout": 15, "appname": "SSIS-Nightly"}
    assert target.server == "db01:1444/Dw"
    assert "S3cr" not in target.server and "S3cr" not in repr(target)


@pytest.mark.parametrize(
    ("source", "host", "port"),
    [
        ("(local)", "127.0.0.1", None),
        ("localhost,1433", "127.0.0.1", 1433),
        (r".\SQLEXPRESS", "127.0.0.1\\SQLEXPRESS", None),
        (r"srv07\ETL", "srv07\\ETL", None),
        ("tcp:srv07.corp,1500", "srv07.corp", 1500),
    ],
)
def test_sql_server_data_source_forms(source, host, port):
    target = target_for(
        settings("OLEDB", f"Provider=SQLOLEDB.1;Data Source={source};User ID=u;Password=p;")
    )
    assert (target.url.host, target.url.port) == (host, port)


def test_sqlclient_synonyms_and_the_short_sql_qualifier():
    for creation in (SQLCLIENT, "ADO.NET:SQL"):
        target = target_for(settings(creation, "Server=srv;Database=d;UID=a;PWD=b;"))
        assert target.url.drivername == "mssql+pymssql"
        assert (target.url.host, target.url.database, target.url.username) == ("srv", "d", "a")


def test_ntlm_domain_user_is_passed_on_with_integrated_security():
    target = target_for(
        settings(
            SQLCLIENT, r"Data Source=srv;Integrated Security=True;User ID=CORP\etl;Password=x;"
        )
    )
    assert target.url.username == "CORP\\etl" and not target.integrated


def test_npgsql_maps_to_psycopg_with_its_options():
    target = target_for(
        settings(
            "ADO.NET:Npgsql.NpgsqlConnection, Npgsql",
            "Host=pg1;Port=5433;Database=dw;Username=etl;Password=pw;SSL Mode=VerifyFull;"
            "Timeout=5;Application Name=nightly",
        )
    )
    assert target.url.drivername == "postgresql+psycopg"
    assert (target.url.host, target.url.port, target.url.database) == ("pg1", 5433, "dw")
    assert dict(target.connect_args) == {
        "connect_timeout": 5,
        "application_name": "nightly",
        "sslmode": "verify-full",
    }
    assert target.server == "pg1:5433/dw"


def test_system_data_sqlite_is_a_file_or_memory(tmp_path):
    path = str(tmp_path / "x.db")
    target = target_for(settings(SQLITE, f"Data Source={path};Version=3;Pooling=True;"))
    assert (target.dialect, target.url.database, target.server) == ("sqlite", path, path)
    memory = target_for(settings(SQLITE, "Data Source=:memory:;Version=3;"))
    assert memory.url.database is None and memory.server == ":memory:"


def test_an_encrypted_sqlite_database_is_refused():
    (problem,) = string_problems(settings(SQLITE, "Data Source=x.db;Password=hush;"))
    assert "encrypted SQLite" in problem and "hush" not in problem


def test_odbc_strings_go_to_pyodbc_as_they_are():
    text = "Driver={ODBC Driver 17 for SQL Server};Server=srv;Database=d;Trusted_Connection=Yes;"
    target = target_for(settings("ODBC", text))
    assert (target.driver, target.dialect, target.odbc) == ("pyodbc", "mssql", text)
    assert target.server == "srv/d"
    dsn = target_for(
        settings("ADO.NET:System.Data.Odbc.OdbcConnection, System.Data", "Dsn=pp45PR;")
    )
    assert (dsn.driver, dsn.dialect, dsn.server) == ("pyodbc", "", "DSN=pp45PR")


def test_oledb_over_odbc_drops_the_provider():
    target = target_for(
        settings("OLEDB", "Provider=MSDASQL.1;Driver={PostgreSQL Unicode};Server=h;Port=5;")
    )
    assert target.driver == "pyodbc" and target.dialect == "postgresql"
    assert "MSDASQL" not in target.odbc and "Driver={PostgreSQL Unicode}" in target.odbc


@pytest.mark.parametrize(
    ("creation", "text", "what"),
    [
        ("OLEDB", "Provider=Microsoft.Jet.OLEDB.4.0;Data Source=C:\\x.xls;", "Jet/ACE"),
        ("OLEDB", "Provider=Microsoft.ACE.OLEDB.12.0;Data Source=C:\\x.accdb;", "Jet/ACE"),
        ("OLEDB", "Provider=OraOLEDB.Oracle;Data Source=orcl;", "Oracle"),
        ("OLEDB", "Provider=Sybase.ASEOLEDBProvider.2;Data Source=s;", "Sybase"),
        ("ADO.NET:Oracle.ManagedDataAccess.Client.OracleConnection", "Data Source=o;", "Oracle"),
    ],
)
def test_providers_without_a_driver_are_a_problem_that_names_the_fix(creation, text, what):
    (problem,) = string_problems(settings(creation, text))
    assert what in problem and "'CM'" in problem and '--conn "CM=' in problem
    with pytest.raises(ConnectionManagerError, match=what):
        target_for(settings(creation, text))


def test_a_misspelt_key_gets_did_you_mean_and_never_shows_a_value():
    problems = string_problems(
        settings(
            "OLEDB",
            "Provider=SQLNCLI11;Data Source=s;Initial Catlog=Dw;Pasword=Hunter2;Some Vendor Key=1;",
        )
    )
    assert len(problems) == 2, problems
    assert "'Initial Catlog'" in problems[0] and "'Initial Catalog'" in problems[0]
    assert "'Pasword'" in problems[1] and "'Password'" in problems[1]
    assert not any("Hunter2" in p for p in problems)


def test_the_corpus_keys_are_not_second_guessed():
    text = (
        "Data Source=.;Initial Catalog=X;Provider=SQLNCLI10.1;Integrated Security=SSPI;"
        "Persist Security Info=True;Auto Translate=False;Application Name=SSIS-P-{1}CM;"
        "User ID=u;Connect Timeout=30;MultipleActiveResultSets=True;"
    )
    assert string_problems(settings("OLEDB", text)) == []
    assert string_problems(settings(SQLCLIENT, text.replace("Provider=SQLNCLI10.1;", ""))) == []


def test_no_server_no_provider_or_no_string_is_a_problem():
    (no_server,) = string_problems(settings("OLEDB", "Provider=SQLNCLI11;Initial Catalog=X;"))
    assert "names no server" in no_server and "Data Source=" in no_server
    (no_provider,) = string_problems(settings("OLEDB", "Data Source=s;Initial Catalog=X;"))
    assert "no Provider" in no_provider
    (empty,) = string_problems(settings("ADO", ""))
    assert "no connection string" in empty
    (no_driver,) = string_problems(settings("ODBC", "Server=s;Database=d;"))
    assert "without Driver= or DSN=" in no_driver


def test_ssis_properties_win_over_the_string():
    target = target_for(
        settings(
            "OLEDB",
            "Provider=SQLNCLI11;Data Source=old;Initial Catalog=a;",
            ServerName="new,1500",
            InitialCatalog="b",
            UserName="etl",
            Password="pw",
        )
    )
    assert (target.url.host, target.url.port, target.url.database) == ("new", 1500, "b")
    assert (target.url.username, target.url.password) == ("etl", "pw")


def test_a_url_is_used_as_it_is_and_its_password_stays_out_of_the_server():
    target = target_for(settings("OLEDB", "postgresql+psycopg://etl:Pw-9@db.corp:6432/dw"))
    assert target.url.drivername == "postgresql+psycopg"
    assert target.server == "db.corp:6432/dw" and target.secret == "Pw-9"
    sqlite = target_for(settings(SQLCLIENT, "sqlite:///rel/x.db"))
    assert (sqlite.dialect, sqlite.server) == ("sqlite", "rel/x.db")


def test_a_url_sqlalchemy_cannot_read_is_a_problem_without_the_url():
    (problem,) = string_problems(settings("OLEDB", "postgresql+psycopg://u:Pw-9@h:notaport/db"))
    assert "cannot read" in problem and "Pw-9" not in problem


def test_manager_check_adds_translate_and_retain_values():
    base = "Provider=SQLNCLI11;Data Source=s;"
    assert OleDbConnectionManager.check(settings("OLEDB", base, Translate="tsql")) == []
    (bad,) = OleDbConnectionManager.check(settings("OLEDB", base, Translate="plsql"))
    assert "Translate='plsql'" in bad
    (retain,) = OleDbConnectionManager.check(settings("OLEDB", base, Retain="maybe"))
    assert "RetainSameConnection='maybe'" in retain


@pytest.mark.parametrize(
    ("cls", "creation", "text", "support"),
    [
        (OleDbConnectionManager, "OLEDB", "Provider=SQLNCLI11;Data Source=s;", "local"),
        (AdoNetConnectionManager, "ADO.NET:Npgsql.NpgsqlConnection", "Host=h;", "two-phase"),
        (AdoNetConnectionManager, SQLITE, "Data Source=x.db;", "local"),
        (OdbcConnectionManager, "ODBC", "Driver={PostgreSQL Unicode};Server=h;", "none"),
        (OleDbConnectionManager, "OLEDB", "Provider=MSDASQL;Driver={PostgreSQL Unicode};", "none"),
        (OleDbConnectionManager, "OLEDB", "postgresql+psycopg://u@h/db", "two-phase"),
        (OleDbConnectionManager, "OLEDB", "sqlite:///x.db", "local"),
    ],
)
def test_transaction_support_from_the_settings_alone(cls, creation, text, support):
    assert cls.transaction_support(settings(creation, text)) == support


def test_importing_the_managers_imports_no_database_library():
    code = (
        "import sys, dtsx.connections.database; "
        "print(sorted(m for m in ('sqlalchemy', 'psycopg', 'pyodbc', 'sqlite3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dtsx_translate_key_is_accepted_and_never_reaches_an_odbc_driver():
    text = "Provider=SQLNCLI11;Data Source=s;Auto Translate=False;Translate=tsql;"
    assert OleDbConnectionManager.check(settings("OLEDB", text)) == []
    odbc = target_for(settings("ODBC", "Driver={PostgreSQL Unicode};Server=h;Translate=tsql;"))
    assert "Translate" not in odbc.odbc
    (bad,) = OleDbConnectionManager.check(settings("OLEDB", text.replace("=tsql", "=plsql")))
    assert "Translate='plsql'" in bad


def test_ado_net_over_ole_db_and_microsoft_data_sqlite():
    oledb = target_for(
        settings("ADO.NET:System.Data.OleDb.OleDbConnection", "Provider=SQLNCLI11;Data Source=s;")
    )
    assert oledb.dialect == "mssql"
    lite = target_for(
        settings("ADO.NET:Microsoft.Data.Sqlite.SqliteConnection", "Data Source=a.db")
    )
    assert (lite.dialect, lite.server) == ("sqlite", "a.db")


@pytest.mark.parametrize(
    ("creation", "text", "dialect"),
    [
        ("OLEDB", "Provider=SQLNCLI11.1;Data Source=.;", "mssql"),
        (SQLCLIENT, "Data Source=.;", "mssql"),
        ("ADO.NET:Npgsql.NpgsqlConnection", "Host=h;", "postgresql"),
        (SQLITE, "Data Source=x.db;", "sqlite"),
        ("ODBC", "Driver={PostgreSQL Unicode};Server=h;", "postgresql"),
        ("ODBC", "Dsn=pp45PR;", None),
        ("OLEDB", "Provider=Microsoft.Jet.OLEDB.4.0;Data Source=x.mdb;", None),
        ("OLEDB", "postgres://u@h/db", "postgresql"),
        ("OLEDB", "mysql+pymysql://u@h/db", "mysql"),
        ("OLEDB", "sqlite:///x.db", "sqlite"),
    ],
)
def test_dialect_of_the_settings_without_connecting(creation, text, dialect):
    assert OleDbConnectionManager.dialect_of(settings(creation, text)) == dialect


def test_odbc_braced_values_may_hold_semicolons_and_braces():
    text = "Driver={PostgreSQL Unicode};Server=h;Uid=u;Pwd={a;b}}c};Database=d"
    target = target_for(settings("ODBC", text))
    assert target.secret == "a;b}c"
    assert target.odbc == "Driver={PostgreSQL Unicode};Server=h;Uid=u;Pwd={a;b}}c};Database=d;"
    assert "a;b" not in target.server
    (problem,) = string_problems(settings("ODBC", "Driver={PostgreSQL Unicode;Pwd=Hunter2"))
    assert "no closing '}' for the value of Driver" in problem and "Hunter2" not in problem


def test_a_sqlite_file_on_an_unmapped_windows_path_is_a_problem():
    text = "Data Source=C:\\data\\x.db;Version=3;"
    (problem,) = string_problems(settings(SQLITE, text))
    assert "C:\\data\\x.db is a Windows path that no --path-map rule maps" in problem
    mapped = ConnectionSettings(
        "CM", SQLITE.upper(), text, local_path=lambda p: p.replace("C:\\data\\", "/srv/")
    )
    assert string_problems(mapped) == [] and target_for(mapped).server == "/srv/x.db"
