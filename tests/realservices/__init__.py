"""Real services (PostgreSQL, ...) started by tests, for tests, on 127.0.0.1 only."""
