"""The mitigation policies, by who applies them: the reader, the sender, the kernel, the
administrator. Importing this package registers them in `simulator.policies.POLICIES`."""

from . import reader, sender, kernel, admin  # noqa: F401,I001  (the order `oomsim policies` lists)
