"""`LLMSpec`: one candidate LLM of the pool, and what one call to it used and cost."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ConfigError
from .text import estimate_tokens, storable_text

__all__ = ["CallUsage", "LLMSpec"]


def _positive_or_none(name: str, value: float | None, *, integer: bool = False) -> None:
    if value is None:
        return
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise ConfigError(f"{name} must be {kind} or None, got {value!r}.")


@dataclass(frozen=True)
class CallUsage:
    """Tokens and USD cost of one call (``estimated`` when the child reported no token counts).

    ``cost`` is None only for a call whose LLM left the pool before the call ended.
    """

    input_tokens: int
    output_tokens: int
    estimated: bool
    cost: float | None


@dataclass(frozen=True)
class LLMSpec:
    """A candidate LLM: its name, prices and serving limits.

    Args:
        name: Identifier of the LLM; the integrations use it as the child model's key.
        input_price: USD per million input tokens.
        output_price: USD per million output tokens.
        context_window: Largest prompt in tokens, or None when unknown.
        max_concurrency: Requests the LLM serves at once, or None for unlimited.
        tokens_per_second: Generation speed, used to estimate service time.

    Example:
        >>> LLMSpec("gpt-4o-mini", input_price=0.15, output_price=0.6).cost(1000, 200)
        0.00027
    """

    name: str
    input_price: float = 0.0
    output_price: float = 0.0
    context_window: int | None = None
    max_concurrency: int | None = None
    tokens_per_second: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"LLMSpec.name must be a non-empty string, got {self.name!r}.")
        if "\x00" in self.name or storable_text(self.name) != self.name:  # no log could hold it
            raise ConfigError(
                f"LLMSpec.name must be text without NUL or lone surrogates, got {self.name!r}."
            )
        for field in ("input_price", "output_price"):
            value = getattr(self, field)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(
                    f"LLMSpec.{field} of {self.name!r} must be a finite number >= 0 "
                    f"(USD per million tokens), got {value!r}."
                )
        _positive_or_none(
            f"LLMSpec.context_window of {self.name!r}", self.context_window, integer=True
        )
        _positive_or_none(
            f"LLMSpec.max_concurrency of {self.name!r}", self.max_concurrency, integer=True
        )
        _positive_or_none(f"LLMSpec.tokens_per_second of {self.name!r}", self.tokens_per_second)

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        """USD cost of a call with the given token counts."""
        return round(
            (input_tokens * self.input_price + output_tokens * self.output_price) / 1e6, 12
        )

    def price_call(
        self, prompt: str, answer: str | None, reported_tokens: tuple[int, int] | None = None
    ) -> CallUsage:
        """Tokens and cost of one call: the ``(input, output)`` tokens the LLM reported, else
        estimates from the prompt and answer texts (an answer of None counts 0 output tokens).

        Example:
            >>> spec = LLMSpec("m", input_price=1.0, output_price=2.0)
            >>> spec.price_call("prompt", "answer", (1000, 500))
            CallUsage(input_tokens=1000, output_tokens=500, estimated=False, cost=0.002)
            >>> spec.price_call("x" * 400, None).input_tokens
            100
        """
        if reported_tokens is None:
            in_tok = estimate_tokens(prompt)
            out_tok = 0 if answer is None else estimate_tokens(answer)
        else:
            in_tok, out_tok = int(reported_tokens[0]), int(reported_tokens[1])
        return CallUsage(in_tok, out_tok, reported_tokens is None, self.cost(in_tok, out_tok))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LLMSpec:
        allowed = {
            "name",
            "input_price",
            "output_price",
            "context_window",
            "max_concurrency",
            "tokens_per_second",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ConfigError(
                f"Unknown LLMSpec fields {sorted(unknown)}; allowed are {sorted(allowed)}."
            )
        return cls(**data)
