"""Charter's built-in drivers, one module each, registered as ``charter.drivers`` entry points
in pyproject.toml (the way third-party drivers register too)."""
