"""What the client raises: :class:`ApiError` for an answer that is a problem, :class:`NetworkError` for no answer.

Every error response of the API is an RFC 9457 ``application/problem+json`` body; ``ApiError`` carries it.
``NetworkError`` means the server could not be reached, or the connection broke, on every allowed attempt.
``IntegrityError`` means a download's bytes do not match the ETag (SHA-256) the server sent.
"""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    """The server answered with an error status (4xx, or 5xx / 429 after the retries ran out).

    ``str(error)`` is one line: ``422 invalid-parameter: webhook_url: …``.
    """

    def __init__(self, status: int, problem: dict[str, Any], headers: httpx.Headers | None = None) -> None:
        self.status = status
        #: The parsed problem+json body (a made-up one with type ``about:blank`` if the body was not JSON).
        self.problem = problem
        #: The response headers (e.g. ``Retry-After`` or the ``RateLimit-*`` headers).
        self.headers = headers if headers is not None else httpx.Headers()
        super().__init__(self._line())

    @property
    def type(self) -> str:
        """The problem type URI, e.g. ``https://reelfoundry.dev/problems/invalid-parameter``."""
        return str(self.problem.get("type") or "about:blank")

    @property
    def code(self) -> str:
        """The last segment of the type URI, e.g. ``invalid-parameter``."""
        return self.type.rstrip("/").rsplit("/", 1)[-1]

    @property
    def title(self) -> str:
        """The problem's short, fixed title."""
        return str(self.problem.get("title") or "")

    @property
    def detail(self) -> str:
        """The human-readable explanation of this occurrence."""
        return str(self.problem.get("detail") or self.title)

    @property
    def parameter(self) -> str | None:
        """The request parameter at fault, when the problem names one."""
        value = self.problem.get("parameter")
        return str(value) if value is not None else None

    def _line(self) -> str:
        detail = self.detail
        if self.parameter and not detail.startswith(self.parameter):
            detail = f"{self.parameter}: {detail}"
        return " ".join(f"{self.status} {self.code}: {detail}".split())

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error for a read error response (its body parsed as a problem when it is JSON)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = response.text.strip()[:300] if response.content else ""
            body = {"type": "about:blank", "title": response.reason_phrase, "status": response.status_code}
            body["detail"] = text or response.reason_phrase
        return cls(response.status_code, body, response.headers)


class NetworkError(Exception):
    """No usable answer: the server could not be reached, or the connection broke, on every attempt.

    ``__cause__`` is the last ``httpx`` transport error; ``attempts`` says how many were made.
    """

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


class IntegrityError(Exception):
    """A downloaded file's SHA-256 or size differs from what the server announced; nothing was written."""
