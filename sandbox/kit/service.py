"""`with` for the sandbox's running parts: the block runs between start() and stop()."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Self


class Service(ABC):
    """Supply `start()` and `stop()`; `with part:` then starts it and stops it however the
    block ends."""

    @abstractmethod
    def start(self) -> object:
        """Bind, spawn or open what the part runs on (its return value is not used here)."""

    @abstractmethod
    def stop(self) -> None:
        """Undo start(); a second call does nothing."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
