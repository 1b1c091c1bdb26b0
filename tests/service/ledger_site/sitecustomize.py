"""Installs the test ledger driver in a ``charter serve`` subprocess started with this folder
(and the repository) on PYTHONPATH and ``CHARTER_TEST_LEDGER=1``: tests that SIGKILL a real
server need a datasource whose actions change observable state (tests/enforce/ledger.py).
Python imports ``sitecustomize`` at start-up. Without the variable (pytest's doctest
collection imports this file too) it changes nothing."""

import os

if os.environ.get("CHARTER_TEST_LEDGER") == "1":
    from charter.datasources import registry
    from tests.enforce.ledger import LedgerDriver

    registry.BUILTIN = (*registry.BUILTIN, LedgerDriver)
