"""Enforcement: turning ``execute[...]`` rows into action calls, dry-run by default,
limited and retried. See docs/enforcement.md."""
