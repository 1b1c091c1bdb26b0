"""Alembic's migration scripts for the store: ``env.py`` and one module per revision in ``versions/``.

They are run by :mod:`charter.store.migrate`, never imported for use; this file only makes the
folder a package so tools import its modules under their full names.
"""
