"""``with`` for the objects that own a resource (a connection, a client, a file) and release it
in ``close()``: entering gives the object, leaving closes it, whatever the exit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class Closing(ABC):
    @abstractmethod
    def close(self) -> None:
        """Release what the object holds."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
