"""Named registries: ops and mitigation policies are looked up by the name a scenario uses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable[..., object])


class Registry(dict[str, F], Generic[F]):
    """A name -> function mapping filled by a decorator: `@REG.register("name")`."""

    def register(self, name: str) -> Callable[[F], F]:
        """Register the decorated function under `name`."""

        def deco(fn: F) -> F:
            self[name] = fn
            return fn

        return deco
