"""Fixtures every test module under tests/ shares.

``keystone`` is defined here, once, so the whole session (each xdist worker) starts one
real Keystone: a module that bound it itself (``keystone = realkeystone.keystone``) got a
fixture of its own, and pytest started one Keystone per such module (~15-25 s each, and
each kept running to the end of the session).
"""

from tests.realservices.keystone import keystone  # noqa: F401 (the session fixture)
