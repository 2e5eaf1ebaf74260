"""The exception tree of mixllm.

Every error the package raises on purpose derives from :class:`MixLLMError` and from the builtin
exception a caller would naturally catch, so ``except ValueError`` keeps working::

    MixLLMError
    ├── ConfigError          (ValueError)    a parameter outside what is allowed
    ├── DataFormatError      (ValueError)    routing data with missing / mismatched / NaN columns
    ├── UnknownLLMError      (KeyError)      an LLM name that is not in the pool
    ├── EmptyPoolError       (ValueError)    no LLM left to route to (pool empty or all filtered)
    ├── NotFittedError       (ValueError, AttributeError)  used before ``fit``
    ├── FeedbackError        (ValueError)    feedback for an unknown or already-used decision
    ├── CorruptStateError    (ValueError)    a saved router that fails its integrity checks
    └── MissingDependencyError (ImportError) an optional extra is not installed
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "ConfigError",
    "CorruptStateError",
    "DataFormatError",
    "EmptyPoolError",
    "FeedbackError",
    "MissingDependencyError",
    "MixLLMError",
    "NotFittedError",
    "UnknownLLMError",
]


class MixLLMError(Exception):
    """Base class of every error raised by mixllm on purpose."""


class ConfigError(MixLLMError, ValueError):
    """A parameter is outside the values that are allowed."""


class DataFormatError(MixLLMError, ValueError):
    """Routing data does not have the expected columns or values."""


class UnknownLLMError(MixLLMError, KeyError):
    """An LLM name that is not in the pool."""

    def __init__(self, name: object, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"Unknown LLM {name!r}. LLMs in the pool are {self.known}.")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class EmptyPoolError(MixLLMError, ValueError):
    """There is no candidate LLM to route to."""


class NotFittedError(MixLLMError, ValueError, AttributeError):
    """The object is used before ``fit`` was called."""


class FeedbackError(MixLLMError, ValueError):
    """Feedback that cannot be applied (unknown or already-used decision, bad score)."""


class CorruptStateError(MixLLMError, ValueError):
    """A saved router is incomplete, modified or otherwise unreadable."""


class MissingDependencyError(MixLLMError, ImportError):
    """An optional dependency is missing; the message names the pip command that fixes it."""


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise :class:`ConfigError` unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"Invalid {name} {value!r}. Allowed values are {allowed}.")


def check_non_negative(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number >= 0."""
    if not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}.")
