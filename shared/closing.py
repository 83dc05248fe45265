"""`with` for the objects that hold connections: leaving the block closes them, once written."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class Closing(ABC):
    """Supply `close()`; `with obj:` then closes it however the block ends."""

    @abstractmethod
    def close(self) -> None:
        """Free the connections (sockets, pools, credentials) this object opened."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
