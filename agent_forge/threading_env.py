"""How OpenMP threads wait, set before torch is imported.

torch's CPU build runs its intra-op threads on libgomp. With ``OMP_WAIT_POLICY`` unset, a libgomp
thread that finishes its share of an op spins (up to 300,000 iterations) before it sleeps. A TRM
step at this project's sizes is ~1,000 small ops, each a fork/join, so on a machine whose cores
are also busy with other processes the spinning threads take the cores their partners need and a
two-threaded run slows down up to 17× (docs/performance.md, "Thread layout"). Capping the spin at
1,000 iterations keeps ~98% of the idle-machine speed and removes most of that loss.

This only sets a default: a user who exported ``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY`` keeps
theirs (``OMP_WAIT_POLICY=ACTIVE`` restores full spinning), and it has no effect once libgomp is
loaded (a program that imported torch before ``agent_forge``) or with another OpenMP runtime.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

SPIN_ENV = "GOMP_SPINCOUNT"
POLICY_ENV = "OMP_WAIT_POLICY"
DEFAULT_SPINCOUNT = "1000"


def apply_wait_default(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Set ``GOMP_SPINCOUNT`` to :data:`DEFAULT_SPINCOUNT` unless the user chose how threads wait;
    returns whether it was set."""
    if SPIN_ENV in environ or POLICY_ENV in environ:
        return False
    environ[SPIN_ENV] = DEFAULT_SPINCOUNT
    return True
