"""What the commercial-API backends (``replicate``, ``fal``) share: settings, HTTP with retries, the job loop.

A vendor backend submits a job to the vendor's queue, polls it, and fetches the output file. The loop:

1. **Submit** the request's parameters, mapped to the model's input names (card options ``input`` and
   ``input_map``, below). A rate limit (429) or an unavailable service (502, 503, 504) is retried; a 500
   or a timeout after the request was sent is not, since the vendor may have taken the job and a second
   submission would be charged twice.
2. **Poll** every ``vendor_poll_interval_s``, calling the step callback each time with the expected share
   of the work done (from the card's ``speed.api``, else 60 s) as a percentage, so progress shows and a
   cancel arrives. Polls are retried on 429 and any 5xx, on timeouts and broken connections.
3. On a cancel (:class:`GenerationCancelled` from the callback), an error after submission or the job
   deadline, the vendor's **cancel** endpoint is called (best effort, a few seconds at most) before the
   error goes on, so abandoned work is not left running and billed.
4. **Fetch** the output URL the vendor returns. That URL is hostile input: it is fetched through the
   outbound policy (public addresses only unless ``REELFOUNDRY_WEBHOOK_ALLOWED_HOSTS`` names the host),
   with no credentials, streamed to a temporary file and cut off past ``vendor_max_output_bytes``. It must
   be a decodable video; an MP4 is handed to ``produce()`` as it is (signed without re-encoding), any
   other container is decoded to frames and encoded like a local model's output.

Retries: a 429 waits what its ``Retry-After`` says (seconds or an HTTP date; at most 60 s, and never past
the deadline), other retries back off exponentially from 0.5 s (doubling, at most 30 s) with jitter; each
request is tried at most 5 times. Every request has ``vendor_request_timeout_s`` to connect and to read,
and the whole job ``vendor_timeout_s`` (at most 90 % of ``job_timeout_s``, so the engine never has to
kill a worker that is still talking to a vendor).

Settings come from :class:`~reelfoundry.config.Settings`, read from the ``REELFOUNDRY_*`` environment of
the worker process when the job runs (workers receive the card, not the settings): a missing key there
fails the job with a ConfigurationError naming the variable. (The router, at admission, already routes only
to vendors whose key is set where the job is admitted.)

Card options common to both vendors:

``input``
    Fixed inputs sent with every request, e.g. ``{"resolution": "720p"}``; the request's mapped
    parameters override them.
``input_map``
    ``{our parameter: the vendor's input name, or null to leave it out}``, merged over the backend's
    default map. Our parameters: ``prompt``, ``negative_prompt``, ``seed``, ``num_frames``, ``fps``,
    ``width``, ``height``, ``duration_s`` (num_frames / fps), ``steps``, ``guidance_scale`` and ``image``
    (image-to-video: inputs[0] as a ``data:`` URI, at most 10 MiB); ``duration_s`` is an integer when
    it is a whole number of seconds. By default only prompt, negative_prompt (when given), seed and image
    are sent; a model that takes frames, size or duration names them here (input names differ per model).
``output_path``
    Dotted path to the output URL inside the vendor's output, e.g. ``video.url``; a number indexes a
    list. Defaults per vendor.

The cost of a job is the vendor's price: ``price_usd_per_video_second`` × the output's duration, carried
in ``GenerationOutput.info["vendor_usd"]`` (a decimal string) to the job's cost record.
"""

from __future__ import annotations

import abc
import base64
import email.utils
import logging
import os
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import av
import httpx
import numpy as np
from PIL import Image

from reelfoundry.config import Settings
from reelfoundry.errors import BackendError, ConfigurationError, InvalidParameter, ReelFoundryError
from reelfoundry.finops.meter import usd_text
from reelfoundry.media.probe import MediaInfo, probe
from reelfoundry.outbound.client import OutboundError
from reelfoundry.outbound.download import TooLarge, download
from reelfoundry.outbound.policy import OutboundPolicy, ResolutionFailed
from reelfoundry.portfolio.base import Backend, GenerationOutput, GenerationParams, StepCallback, check_card_limits
from reelfoundry.schema import ModelCard

log = logging.getLogger(__name__)

#: Parameters a card's ``input_map`` may name.
PARAMS = (
    "prompt",
    "negative_prompt",
    "seed",
    "num_frames",
    "fps",
    "width",
    "height",
    "duration_s",
    "steps",
    "guidance_scale",
    "image",
)
_COMMON_OPTIONS = frozenset({"input", "input_map", "output_path"})
MAX_IMAGE_BYTES = 10 * 1_048_576
ATTEMPTS = 5
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 60.0
#: Time the best-effort cancel call may take (the engine's cancel grace is 10 s by default).
CANCEL_BUDGET_S = 5.0
#: Expected job time when the card states no ``speed.api``.
DEFAULT_EXPECTED_S = 60.0
#: Submission answers worth another try: the vendor did not take the job.
_SUBMIT_RETRY = frozenset({429, 502, 503, 504})
_DETAIL_CHARS = 300


def retry_after_s(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None if absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def one_line(text: str, limit: int = _DETAIL_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def vendor_detail(response: httpx.Response) -> str:
    """The vendor's own words about an error answer: its JSON ``detail``/``error``, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return one_line(response.text) or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        for key in ("detail", "error", "message", "title"):
            if body.get(key):
                return one_line(str(body[key]))
    return one_line(str(body))


@dataclass(frozen=True)
class VendorConfig:
    """What one vendor job needs from the settings."""

    base_url: str
    headers: dict[str, str]
    poll_interval_s: float
    request_timeout_s: float
    timeout_s: float
    max_output_bytes: int
    allowed_hosts: tuple[str, ...]


class VendorHTTP:
    """JSON requests to one vendor API with the retry rules of the module docstring and one job deadline."""

    def __init__(
        self,
        vendor: str,
        config: VendorConfig,
        deadline: float,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        jitter: Callable[[], float],
    ) -> None:
        self.vendor = vendor
        self.config = config
        self.deadline = deadline
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._client = httpx.Client(headers=config.headers, follow_redirects=False)

    def close(self) -> None:
        """Close the connections."""
        self._client.close()

    def left(self) -> float:
        """Seconds left before the deadline."""
        return self.deadline - self._clock()

    def expired(self) -> BackendError:
        """The error of a job past its deadline."""
        return BackendError(f"{self.vendor}: no result within {self.config.timeout_s:g} s; the job was cancelled there")

    def send(
        self, method: str, url: str, *, body: dict[str, Any] | None = None, submit: bool = False
    ) -> httpx.Response:
        """The answer to one request: 2xx, or a 4xx other than 429, after retries. BackendError otherwise."""
        what = f"{self.vendor}: {method} {urlsplit(url).path}"
        for attempt in range(1, ATTEMPTS + 1):
            left = self.left()
            if left <= 0:
                raise self.expired()
            wait: float | None = None
            timeout = httpx.Timeout(min(self.config.request_timeout_s, left))
            try:
                response = self._client.request(method, url, json=body, timeout=timeout)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                problem = f"could not connect: {one_line(str(exc) or type(exc).__name__, 200)}"
            except httpx.TimeoutException:
                if submit:  # the vendor may have the job: a second submission could be charged twice
                    raise BackendError(f"{what} got no answer within {timeout.read:g} s") from None
                problem = f"no answer within {timeout.read:g} s"
            except httpx.TransportError as exc:
                if submit:
                    raise BackendError(f"{what} failed: {one_line(str(exc) or type(exc).__name__, 200)}") from None
                problem = one_line(str(exc) or type(exc).__name__, 200)
            else:
                status = response.status_code
                if status < 300:
                    return response
                if status in (401, 403):
                    raise ConfigurationError(
                        f"{self.vendor} refused the API key (HTTP {status}): check "
                        f"REELFOUNDRY_{'REPLICATE_API_TOKEN' if self.vendor == 'replicate' else 'FAL_API_KEY'}"
                    )
                retryable = status in _SUBMIT_RETRY if submit else (status == 429 or status >= 500)
                if not retryable:
                    if status < 500 and status != 429:
                        return response
                    raise BackendError(f"{what} answered HTTP {status}: {vendor_detail(response)}")
                problem = f"HTTP {status}: {vendor_detail(response)}"
                wait = retry_after_s(response.headers.get("retry-after"))
                if wait is not None:
                    wait = min(wait, RETRY_AFTER_MAX_S)
            if attempt == ATTEMPTS:
                raise BackendError(f"{what} failed {ATTEMPTS} times; last: {problem}")
            if wait is None:
                delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
                wait = delay / 2 + self._jitter() * delay / 2
            if wait >= self.left():
                raise BackendError(f"{what} asks to wait {wait:g} s, past the job's deadline; last: {problem}")
            log.info("%s: %s; retrying in %.2f s", what, problem, wait)
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


class VendorJobEnded(BackendError):
    """The vendor ended the job itself (failed, or cancelled there): nothing is left to cancel."""


@dataclass
class Poll:
    """A job's state at the vendor: still running, or done with the output URL."""

    done: bool
    output: Any = None


class VendorBackend(Backend):
    """Submit, poll, cancel and fetch for one vendor; subclasses speak the vendor's protocol."""

    #: "replicate" or "fal": the card's hosting.vendor must say the same.
    vendor: ClassVar[str]
    #: Card options besides the common ones.
    options: ClassVar[frozenset[str]] = frozenset()
    #: Our parameter → the vendor's input name (a card's ``input_map`` overrides entries).
    default_input_map: ClassVar[dict[str, str | None]] = {}
    default_output_path: ClassVar[str | None] = None
    #: The setting holding the key, as its environment variable.
    key_variable: ClassVar[str]

    def __init__(self, card: ModelCard, settings: Settings | None = None) -> None:
        super().__init__(card)
        if card.vendor != self.vendor:
            # A self-hosted card must never send its data (which may be confidential) to a vendor.
            raise ConfigurationError(
                f"card {card.id!r} names the {self.vendor} backend but its hosting is "
                f"{card.vendor or 'self-hosted'}; set hosting: {{vendor: {self.vendor}, region: ...}}"
            )
        unknown = sorted(set(card.options) - _COMMON_OPTIONS - self.options)
        if unknown:
            known = sorted(_COMMON_OPTIONS | self.options)
            raise ConfigurationError(f"card {card.id!r}: unknown {self.vendor} options {unknown}; known: {known}")
        fixed = card.options.get("input", {})
        if not isinstance(fixed, dict):
            raise ConfigurationError(f"card {card.id!r}: option 'input' must be an object, got {fixed!r}")
        self.fixed_input: dict[str, Any] = dict(fixed)
        mapping = card.options.get("input_map", {})
        if not isinstance(mapping, dict) or not all(isinstance(v, str | None) for v in mapping.values()):
            raise ConfigurationError(f"card {card.id!r}: input_map must map parameters to input names (or null)")
        unmapped = sorted(set(mapping) - set(PARAMS))
        if unmapped:
            raise ConfigurationError(
                f"card {card.id!r}: input_map names unknown parameters {unmapped}; known: {PARAMS}"
            )
        self.input_map: dict[str, str | None] = {**self.default_input_map, **mapping}
        output_path = card.options.get("output_path", self.default_output_path)
        if output_path is not None and not isinstance(output_path, str):
            raise ConfigurationError(f"card {card.id!r}: output_path must be a dotted path such as 'video.url'")
        self.output_path: str | None = output_path
        self._settings = settings
        # Injected by tests; time.sleep and time.monotonic otherwise.
        self.sleep: Callable[[float], None] = time.sleep
        self.clock: Callable[[], float] = time.monotonic
        self.jitter: Callable[[], float] = random.random

    # -- the vendor's protocol ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def base_url(self, settings: Settings) -> str:
        """The vendor API's origin from the settings."""

    @abc.abstractmethod
    def api_key(self, settings: Settings) -> str | None:
        """The key from the settings, or None when it is not set."""

    @abc.abstractmethod
    def auth_headers(self, key: str) -> dict[str, str]:
        """The headers that carry the key."""

    @abc.abstractmethod
    def submit(self, http: VendorHTTP, payload: dict[str, Any]) -> Any:
        """Submit ``payload`` (the model's input); a handle for poll and cancel."""

    @abc.abstractmethod
    def poll(self, http: VendorHTTP, handle: Any) -> Poll:
        """The job's state; BackendError when the vendor says it failed or was cancelled."""

    @abc.abstractmethod
    def cancel(self, http: VendorHTTP, handle: Any) -> None:
        """Ask the vendor to stop the job (errors are the caller's to ignore)."""

    @abc.abstractmethod
    def job_id(self, handle: Any) -> str:
        """The vendor's id of the job, for logs and info."""

    # -- shared ------------------------------------------------------------------------------------------------

    def check_inputs(self, params: GenerationParams) -> None:
        """The card's limits; image-to-video needs a readable image of at most 10 MiB as inputs[0]."""
        check_card_limits(self.card, params.num_frames, params.width, params.height)
        if params.fps > self.card.max_fps:
            raise InvalidParameter("fps", f"fps must be at most {self.card.max_fps} for {self.card.id}")
        if self.card.task == "image-to-video" or (params.inputs and self.input_map.get("image")):
            if not params.inputs:
                raise InvalidParameter("inputs", f"{self.card.id} is image-to-video: give the first frame as inputs[0]")
            path = params.inputs[0]
            if path.stat().st_size > MAX_IMAGE_BYTES:
                raise InvalidParameter("inputs", f"inputs[0] is over {MAX_IMAGE_BYTES // 1_048_576} MiB")
            try:
                with Image.open(path) as image:
                    image.verify()
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                raise InvalidParameter("inputs", f"inputs[0] ({path.name}) is not a readable image: {exc}") from exc

    def config(self) -> VendorConfig:
        """This vendor's settings; ConfigurationError naming the variable when the key is missing."""
        settings = self._settings if self._settings is not None else Settings()
        key = self.api_key(settings)
        if not key:
            raise ConfigurationError(
                f"model {self.card.id!r} runs at {self.vendor}, but {self.key_variable} is not set on the worker"
            )
        return VendorConfig(
            base_url=self.base_url(settings).rstrip("/"),
            headers={**self.auth_headers(key), "Accept": "application/json", "User-Agent": "reelfoundry"},
            poll_interval_s=settings.vendor_poll_interval_s,
            request_timeout_s=settings.vendor_request_timeout_s,
            timeout_s=min(settings.vendor_timeout_s, 0.9 * settings.job_timeout_s),
            max_output_bytes=settings.vendor_max_output_bytes,
            allowed_hosts=tuple(settings.webhook_allowed_hosts),
        )

    def payload(self, params: GenerationParams) -> dict[str, Any]:
        """The model's input: the card's fixed inputs, then the request's parameters under their mapped names."""
        values: dict[str, Any] = {
            "prompt": params.prompt,
            "negative_prompt": params.negative_prompt,
            "seed": params.seed,
            "num_frames": params.num_frames,
            "fps": params.fps,
            "width": params.width,
            "height": params.height,
            "duration_s": _seconds(params.num_frames / params.fps),
            "steps": params.steps,
            "guidance_scale": params.guidance_scale,
            "image": _data_uri(params.inputs[0]) if params.inputs and self.input_map.get("image") else None,
        }
        payload = dict(self.fixed_input)
        for param, name in self.input_map.items():
            if name and values.get(param) is not None:
                payload[name] = values[param]
        return payload

    def generate(self, params: GenerationParams, callback: StepCallback | None = None) -> GenerationOutput:
        """Submit, poll until done (``callback(percent, 100)`` per poll), fetch and check the output."""
        # 1. Check inputs and settings
        self.check_inputs(params)
        config = self.config()
        started = self.clock()
        http = VendorHTTP(
            self.vendor, config, started + config.timeout_s, sleep=self.sleep, clock=self.clock, jitter=self.jitter
        )
        expected = self._expected_s(params)

        def report(fraction: float) -> None:
            if callback is not None:
                callback(min(99, int(100 * fraction)), 100)

        try:
            # 2. Submit
            handle = self.submit(http, self.payload(params))
            job = self.job_id(handle)
            log.info("%s job %s submitted for %s", self.vendor, job, self.card.id)
            # 3. Poll until done; a cancel raised by the callback or any error cancels the vendor's job
            try:
                while True:
                    report((self.clock() - started) / expected)
                    state = self.poll(http, handle)
                    if state.done:
                        break
                    if http.left() <= config.poll_interval_s:
                        raise http.expired()
                    self.sleep(config.poll_interval_s)
            except VendorJobEnded:
                raise
            except BaseException:
                self._cancel_quietly(http, handle)
                raise
            url = self._output_url(state.output)
            # 4. Fetch the output through the outbound policy, then check it is a video
            path, media = self._fetch(url, config, http, lambda: report((self.clock() - started) / expected))
        finally:
            http.close()
        if callback is not None:
            callback(100, 100)
        # 5. The vendor's price for the seconds delivered
        usd = self.card.price_usd_per_video_second or Decimal(0)
        info: dict[str, object] = {
            "vendor": self.vendor,
            "vendor_job": job,
            "vendor_seconds": media.duration_s,
            "vendor_usd": usd_text(usd * Decimal(str(media.duration_s))),
        }
        fps = max(1, round(media.fps)) if media.fps else params.fps
        if media.media_type == "video/mp4":
            return GenerationOutput(frames=(), fps=fps, num_frames=media.num_frames, info=info, video=path)
        return GenerationOutput(frames=_Decoded(path), fps=fps, num_frames=media.num_frames, info=info)

    def _expected_s(self, params: GenerationParams) -> float:
        speed = self.card.speed.get("api")
        if speed is None:
            return DEFAULT_EXPECTED_S
        return max(1.0, speed.seconds(params.num_frames, params.width, params.height, params.steps or 1))

    def _cancel_quietly(self, http: VendorHTTP, handle: Any) -> None:
        """Ask the vendor to stop; a few seconds at most, and a failure is only logged."""
        http.deadline = min(http.deadline, self.clock() + CANCEL_BUDGET_S)
        if http.left() <= 0:
            http.deadline = self.clock() + CANCEL_BUDGET_S
        try:
            self.cancel(http, handle)
            log.info("%s job %s cancelled", self.vendor, self.job_id(handle))
        except (ReelFoundryError, httpx.HTTPError) as exc:
            log.warning("%s job %s could not be cancelled: %s", self.vendor, self.job_id(handle), exc)

    def _output_url(self, output: Any) -> str:
        value = output
        if self.output_path:
            for part in self.output_path.split("."):
                if isinstance(value, dict):
                    value = value.get(part)
                elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                    value = value[int(part)]
                else:
                    value = None
                    break
        elif isinstance(value, list):
            value = next((v for v in value if isinstance(v, str)), None)
        if not isinstance(value, str) or not value:
            where = f" at {self.output_path!r}" if self.output_path else ""
            raise BackendError(
                f"{self.vendor}: the job succeeded but its output has no URL{where}: {one_line(repr(output), 200)}"
            )
        return value

    def _fetch(
        self, url: str, config: VendorConfig, http: VendorHTTP, tick: Callable[[], None]
    ) -> tuple[Path, MediaInfo]:
        fd, name = tempfile.mkstemp(prefix="reelfoundry-vendor-", suffix=".mp4")
        os.close(fd)
        path = Path(name)
        left = http.left()
        if left <= 0:
            path.unlink(missing_ok=True)
            raise http.expired()
        policy = OutboundPolicy(config.allowed_hosts)
        try:
            download(
                url,
                path,
                policy,
                max_bytes=config.max_output_bytes,
                deadline_s=left,
                parameter="output URL",
                tick=lambda _received: tick(),
            )
        except TooLarge as exc:
            raise BackendError(f"{self.vendor}: {exc}") from None
        except InvalidParameter as exc:  # RefusedDestination: a private address, a bad scheme
            raise BackendError(f"{self.vendor}: refused to fetch the output: {exc.detail}") from None
        except OutboundError as exc:
            raise BackendError(f"{self.vendor}: could not fetch the output: {exc}") from None
        except ResolutionFailed as exc:
            raise BackendError(f"{self.vendor}: could not fetch the output: {exc.detail}") from None
        try:
            media = probe(path)
        except InvalidParameter as exc:
            path.unlink(missing_ok=True)
            raise BackendError(f"{self.vendor}: the output is not a video: {exc.detail}") from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path, media


def _seconds(value: float) -> int | float:
    """Whole seconds as an integer (APIs that take a duration often take only those), else to the millisecond."""
    return int(value) if value.is_integer() else round(value, 3)


def _data_uri(path: Path) -> str:
    with Image.open(path) as image:
        kind = Image.MIME.get(image.format or "", "application/octet-stream")
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"


class _Decoded:
    """The frames of a downloaded video as uint8 RGB (cropped to even sizes, as H.264 needs), decoded as they
    are read. The file is removed once they have been read, or when this is dropped unread."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            with av.open(str(self.path)) as container:
                for frame in container.decode(video=0):
                    array = frame.to_ndarray(format="rgb24")
                    height, width = array.shape[:2]
                    yield np.ascontiguousarray(array[: height - height % 2, : width - width % 2])
        finally:
            self.path.unlink(missing_ok=True)

    def __del__(self) -> None:
        self.path.unlink(missing_ok=True)
