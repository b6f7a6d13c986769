"""The mitigation policies, by who applies them: the reader, the sender, the kernel, the
administrator. Importing this package registers them in `registry.POLICIES`, in the order
`oomsim policies` lists them: `none` first."""

from ..scenario_model import Scenario
from .registry import policy


@policy("none", target=None)
def no_mitigation(sc: Scenario) -> Scenario:
    """Accept OOM as orthogonal: the program as written."""
    return sc


from . import reader, sender, kernel, admin, userspace  # noqa: E402,F401,I001  (registers them, in this order)
