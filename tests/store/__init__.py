"""Tests of charter.store, each run against SQLite and a real PostgreSQL."""
