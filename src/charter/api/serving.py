"""How the serving process shares the interpreter between the event loop and the handlers.

Handlers run in the thread pool; the event loop (reading requests, parsing small bodies,
writing answers) runs in the main thread, and every time it gives up the GIL for a system
call (a socket read or write, the selector) it must win it back from a handler doing
Python work: a push finding its difference, a rule being checked. CPython hands the GIL
over only every ``sys.getswitchinterval()`` (5 ms by default), so under load each answer
waited several of those for the loop's own few microseconds of work. A 1 ms interval lets
the loop in sooner, at the cost of more hand-overs between busy handlers.
"""

from __future__ import annotations

SWITCH_INTERVAL_S = 0.001
