"""The cloud-inventory benchmark: Charter against a DuckDB baseline (see README.md)."""
