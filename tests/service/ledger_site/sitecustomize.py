"""Installs the test ledger driver in a ``charter serve`` subprocess started with this folder
(and the repository) on PYTHONPATH: tests that SIGKILL a real server need a datasource whose
actions change observable state (tests/enforce/ledger.py). Python imports ``sitecustomize``
at start-up; nothing here runs in the test process itself."""

from charter.datasources import registry
from tests.enforce.ledger import LedgerDriver

registry.BUILTIN = (*registry.BUILTIN, LedgerDriver)
