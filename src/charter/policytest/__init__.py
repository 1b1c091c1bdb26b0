"""``charter test``: policy test cases in YAML, run fresh and incrementally, with coverage.

``cases`` reads and validates test files, ``runner`` runs each case (a fresh engine, then
an incremental one fed the same rows in a seeded random order, both checked against the
expectations and against each other), ``coverage`` counts the rules that derived rows and
``report`` prints the outcome as text, JSON or JUnit XML.
"""
