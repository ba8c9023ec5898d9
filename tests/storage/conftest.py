"""Storage fixtures: a throwaway PostgreSQL server and a database per test."""

from tests.support.postgres import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]
