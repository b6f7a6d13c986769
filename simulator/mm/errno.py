"""Error numbers, named as in include/uapi/asm-generic/errno-base.h and errno.h.

A modelled syscall returns the errno's name (a string), which is what outcomes, event logs and
golden files record; this module is the one place those names are defined.
"""

from __future__ import annotations

EPERM = "EPERM"
EINTR = "EINTR"
EBADF = "EBADF"
EAGAIN = "EAGAIN"
ENOMEM = "ENOMEM"
EACCES = "EACCES"
EFAULT = "EFAULT"
EBUSY = "EBUSY"
EEXIST = "EEXIST"
EINVAL = "EINVAL"
ENOSPC = "ENOSPC"
EOPNOTSUPP = "EOPNOTSUPP"
