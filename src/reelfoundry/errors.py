"""The one exception root and its kinds.

Every error a caller can act on is a small subclass of :class:`ReelFoundryError`
that carries an HTTP status and a stable problem ``type``.  The API turns them
into RFC 9457 ``application/problem+json`` bodies in one handler, and the CLI
prints ``detail`` on one line and exits with code 2.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_BASE = "https://reelfoundry.dev/problems/"


class ReelFoundryError(Exception):
    """Root of every error ReelFoundry raises on purpose."""

    status: ClassVar[int] = 500
    type_slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"
    #: Whether retrying the same operation later may succeed.
    recoverable: ClassVar[bool] = False

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @classmethod
    def problem_type(cls) -> str:
        """Stable URI naming this kind of problem."""
        return PROBLEM_BASE + cls.type_slug

    @property
    def type(self) -> str:
        """Stable URI naming the kind of problem."""
        return self.problem_type()

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with this error's response (none by default)."""
        return {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body for this error."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class InvalidParameter(ReelFoundryError):
    """A request parameter has a value the platform cannot honour."""

    status = 422
    type_slug = "invalid-parameter"
    title = "Invalid parameter"

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__(detail, parameter=parameter)
        self.parameter = parameter


class PolicyDenied(ReelFoundryError):
    """A content or data-class rule refuses the request; ``rule`` names which."""

    status = 422
    type_slug = "policy-denied"
    title = "Refused by policy"

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(detail, rule=rule)
        self.rule = rule


class BadRequest(ReelFoundryError):
    """The request is malformed (bad header, bad cursor, unreadable body)."""

    status = 400
    type_slug = "bad-request"
    title = "Bad request"


class Unauthenticated(ReelFoundryError):
    """No API key, or one that is unknown or revoked."""

    status = 401
    type_slug = "unauthenticated"
    title = "Unauthenticated"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ReelFoundryError):
    """The key is valid but its role may not do this."""

    status = 403
    type_slug = "forbidden"
    title = "Forbidden"


class NotFound(ReelFoundryError):
    """No such resource in the caller's tenant."""

    status = 404
    type_slug = "not-found"
    title = "Not found"


class BudgetExceeded(ReelFoundryError):
    """A hard budget cannot cover the job's estimated cost."""

    status = 402
    type_slug = "budget-exceeded"
    title = "Budget exceeded"


class Conflict(ReelFoundryError):
    """The resource is in a state that forbids the operation."""

    status = 409
    type_slug = "conflict"
    title = "Conflict"


class IdempotencyConflict(Conflict):
    """An Idempotency-Key was reused with a different request body."""

    type_slug = "idempotency-key-reused"
    title = "Idempotency key reused"


class InvalidTransition(Conflict):
    """A job state change that the lifecycle does not allow."""

    type_slug = "invalid-transition"
    title = "Invalid state transition"


class Gone(ReelFoundryError):
    """The resource existed but is no longer available here (e.g. an expired delivery URL)."""

    status = 410
    type_slug = "gone"
    title = "Gone"


class RangeNotSatisfiable(ReelFoundryError):
    """An HTTP Range outside the content."""

    status = 416
    type_slug = "range-not-satisfiable"
    title = "Range not satisfiable"

    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.extra['size']}"} if "size" in self.extra else {}


class PayloadTooLarge(ReelFoundryError):
    """A request body over the configured limit."""

    status = 413
    type_slug = "payload-too-large"
    title = "Payload too large"


class RequestTimeout(ReelFoundryError):
    """A request body that did not arrive within the time allowed."""

    status = 408
    type_slug = "request-timeout"
    title = "Request timeout"
    recoverable = True


class UnsupportedMediaType(ReelFoundryError):
    """A request body of a content type this endpoint does not take."""

    status = 415
    type_slug = "unsupported-media-type"
    title = "Unsupported media type"


class RateLimited(ReelFoundryError):
    """An API key sent more requests than its rate limit allows; ``retry_after_s`` says when to try again."""

    status = 429
    type_slug = "rate-limited"
    title = "Too many requests"
    recoverable = True

    def __init__(self, detail: str, *, retry_after_s: int, limit_headers: dict[str, str] | None = None) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s
        self.limit_headers = limit_headers or {}

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s), **self.limit_headers}


class ServiceBusy(ReelFoundryError):
    """The server is at a capacity limit (e.g. uploads in progress); ``retry_after_s`` says when to try again."""

    status = 503
    type_slug = "busy"
    title = "Busy"
    recoverable = True

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class UnknownModel(InvalidParameter):
    """The requested model id is not in the portfolio."""

    type_slug = "unknown-model"
    title = "Unknown model"

    def __init__(self, model: str, known: list[str]) -> None:
        super().__init__("model", f"unknown model {model!r}; known models: {', '.join(known)}")


class ModelIntegrityError(ReelFoundryError):
    """A model file is missing or its sha256 differs from the one the card pins."""

    status = 500
    type_slug = "model-integrity"
    title = "Model integrity check failed"

    def __init__(self, file: str, detail: str) -> None:
        super().__init__(detail, file=file)
        self.file = file


class GenerationCancelled(ReelFoundryError):
    """Raised inside a backend at a step boundary when its job was cancelled."""

    status = 409
    type_slug = "cancelled"
    title = "Cancelled"


class BackendError(ReelFoundryError):
    """A backend failed while generating (raised, crashed or timed out)."""

    status = 500
    type_slug = "backend-error"
    title = "Backend error"
    recoverable = True


class ConfigurationError(ReelFoundryError):
    """Settings that cannot work together."""

    status = 500
    type_slug = "configuration"
    title = "Configuration error"
