"""Redaction of secrets in error text: what a failing child said, before anyone else sees it.

A child's exception often quotes the request it failed on: a URL with ``?key=...``, an
``Authorization: Bearer ...`` header, or the API key itself (``sk-...``, ``sk-ant-...``,
``AIza...``). :func:`redact` replaces every such value with ``[REDACTED]`` and keeps the rest,
so the message still says what went wrong. The :class:`~mixllm_core.Dispatcher` runs every error
text through it before the text reaches response metadata, stream chunks, an
:class:`~mixllm_core.AllCandidatesFailedError` or the router's log.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "describe_error", "redact"]

REDACTED = "[REDACTED]"

_NAMES = (
    r"api[_-]?key|apikey|key|access[_-]?token|refresh[_-]?token|id[_-]?token|token|auth|"
    r"client[_-]?secret|secret|password|passwd|pwd|sig|signature|x-api-key|x-goog-api-key"
)

# Authorization: Bearer abc / authorization=Basic abc / "Authorization": "token abc"
_AUTHORIZATION = re.compile(
    r"""(authorization["']?\s*[:=]\s*["']?)(?:(bearer|basic|token)\s+)?[^\s"',;}]+""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)
# ?key=...&token=...  (URL query parameters and form fields)
_QUERY = re.compile(rf"([?&;](?:{_NAMES})=)[^&\s#'\"]+", re.IGNORECASE)
# api_key='...', "api_key": "...", api-key: ...  (reprs, JSON, headers)
_ASSIGNED = re.compile(
    rf"""(\b(?:{_NAMES})["']?\s*[:=]\s*["']?)(?!{re.escape(REDACTED)})[^\s"',&)}}\]]+""",
    re.IGNORECASE,
)
# provider key formats that are secret wherever they appear
_TOKENS = re.compile(
    r"\b(?:sk-(?:ant-|proj-|or-)?[A-Za-z0-9_-]{16,}|AIza[0-9A-Za-z_-]{30,}|"
    r"gsk_[A-Za-z0-9]{20,}|hf_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,}|"
    r"gh[pousr]_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})"
)


def _authorization(match: re.Match[str]) -> str:
    scheme = f"{match.group(2)} " if match.group(2) else ""
    return f"{match.group(1)}{scheme}{REDACTED}"


def redact(text: str) -> str:
    """``text`` with API keys, tokens and passwords replaced by ``[REDACTED]``.

    Example:
        >>> redact("403 for https://api.example.com/v1/chat?model=m&key=AIzaSyA-secret-123")
        '403 for https://api.example.com/v1/chat?model=m&key=[REDACTED]'
        >>> redact("401: headers={'Authorization': 'Bearer sk-ant-api03-abcdefghijklmnop'}")
        "401: headers={'Authorization': 'Bearer [REDACTED]'}"
        >>> redact("invalid key sk-proj-0123456789abcdefABCDEF")
        'invalid key [REDACTED]'
    """
    text = _AUTHORIZATION.sub(_authorization, text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    text = _QUERY.sub(rf"\1{REDACTED}", text)
    text = _ASSIGNED.sub(rf"\1{REDACTED}", text)
    return _TOKENS.sub(REDACTED, text)


def describe_error(exc: BaseException) -> str:
    """How a failure is shown and logged: ``"<ExceptionType>: <message>"``, message redacted.

    Example:
        >>> describe_error(PermissionError("403 for https://x.example/v1?key=abc123"))
        'PermissionError: 403 for https://x.example/v1?key=[REDACTED]'
    """
    return f"{type(exc).__name__}: {redact(str(exc))}"
