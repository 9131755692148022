"""The PostgreSQL role the web and worker processes connect as.

The tables belong to the role that runs `migrate` (the owner). An owner, let
alone a superuser, can TRUNCATE the audit log, disable its append-only
trigger (`ALTER TABLE … DISABLE TRIGGER`) or skip triggers altogether
(`SET session_replication_role = replica`). The role made here owns nothing
and gets only what serving and the workers need:

- CONNECT and TEMPORARY on the database (event ingestion COPYs into a
  per-connection temporary table), USAGE on the schema (no CREATE);
- SELECT, INSERT, UPDATE, DELETE on every table (no TRUNCATE, REFERENCES or
  TRIGGER), USAGE and SELECT on every sequence, and the same by default on the
  tables and sequences the owner creates later;
- on the append-only tables (the audit log) SELECT and INSERT only.

Run it as the owner after every `migrate` (it is idempotent: it resets the
role's table privileges to exactly these), then point the web and worker's
DATABASE_URL at the role.

    manage.py create_app_role --role ion_app --password …   (or APP_DB_PASSWORD=…)
"""

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from psycopg import sql

from common.models import AuditEntry

# Tables whose rows are never changed once written.
APPEND_ONLY = (AuditEntry,)

ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"


def role_statements(
    *, role: str, password: str, exists: bool, database: str, schema: str, owner: str,
    append_only: list[str],
) -> list[sql.Composable]:  # fmt: skip
    """The statements that bring `role` to exactly the privileges above."""
    ids = {
        "role": sql.Identifier(role),
        "database": sql.Identifier(database),
        "schema": sql.Identifier(schema),
        "owner": sql.Identifier(owner),
    }

    def q(text: str, **extra: sql.Composable) -> sql.Composable:
        return sql.SQL(text).format(**ids, **extra)

    verb = "ALTER ROLE {role} WITH" if exists else "CREATE ROLE {role}"
    statements = [
        q(f"{verb} {ROLE_ATTRIBUTES} PASSWORD {{password}}", password=sql.Literal(password)),
        q("GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {role}"),
        q("GRANT USAGE ON SCHEMA {schema} TO {role}"),
        # From a clean slate, so that a privilege granted by hand does not linger.
        q("REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}"),
        q(f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA {{schema}} TO {{role}}"),
        q("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}"),
        q("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
        q(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
            f"GRANT {TABLE_PRIVILEGES} ON TABLES TO {{role}}"
        ),
        q(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {schema} "
            "GRANT USAGE, SELECT ON SEQUENCES TO {role}"
        ),
    ]
    for table in append_only:
        statements.append(
            q(
                "REVOKE UPDATE, DELETE ON TABLE {schema}.{table} FROM {role}",
                table=sql.Identifier(table),
            )
        )
    return statements


class Command(BaseCommand):
    help = (
        "Create or update the PostgreSQL role the web and worker connect as: owns no "
        "table, may read and write rows, may only read and append to the audit log."
    )

    def add_arguments(self, parser):
        parser.add_argument("--role", default="ion_app", help="the role's name (ion_app)")
        parser.add_argument(
            "--password",
            default=None,
            help="its password; default: the APP_DB_PASSWORD environment variable",
        )
        parser.add_argument("--schema", default="public", help="the tables' schema (public)")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="database alias")

    def handle(self, *args, role: str, password: str | None, schema: str, database: str, **_):
        password = password or os.environ.get("APP_DB_PASSWORD", "")
        if not password:
            raise CommandError("Give the role a password: --password or APP_DB_PASSWORD.")
        connection = connections[database]
        if connection.vendor != "postgresql":
            raise CommandError(f"Database roles need PostgreSQL, not {connection.vendor}.")
        with transaction.atomic(using=database), connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_database()")
            owner, database_name = cursor.fetchone()
            if role == owner:
                raise CommandError(
                    f"{role} is the role running this command (the tables' owner); "
                    "name another role for the web and worker."
                )
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            exists = cursor.fetchone() is not None
            if exists:
                cursor.execute(
                    "SELECT count(*) FROM pg_tables WHERE tableowner = %s AND schemaname = %s",
                    [role, schema],
                )
                if cursor.fetchone()[0]:
                    raise CommandError(
                        f"{role} owns tables in {schema}: it cannot be the unprivileged role."
                    )
            cursor.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
                [schema, [model._meta.db_table for model in APPEND_ONLY]],
            )
            append_only = sorted(row[0] for row in cursor.fetchall())
            raw = connection.connection
            for statement in role_statements(
                role=role,
                password=password,
                exists=exists,
                database=database_name,
                schema=schema,
                owner=owner,
                append_only=append_only,
            ):
                cursor.execute(statement.as_string(raw))
            cursor.execute("SELECT has_schema_privilege(%s, %s, 'CREATE')", [role, schema])
            may_create = cursor.fetchone()[0]
        if may_create:
            self.stderr.write(
                f"Warning: {role} may still CREATE in schema {schema} (granted to PUBLIC before "
                f"PostgreSQL 15): REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC;"
            )
        self.stdout.write(
            f"{'Updated' if exists else 'Created'} role {role} on {database_name}: "
            f"{TABLE_PRIVILEGES} on the tables of {schema}, "
            f"SELECT, INSERT only on {', '.join(append_only) or 'no append-only table'}."
        )
