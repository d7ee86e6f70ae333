"""A typed Python client for the ReelFoundry API, synchronous (:class:`Client`) and asynchronous (:class:`AsyncClient`).

::

    from reelfoundry.client import Client

    with Client("http://127.0.0.1:8000", api_key=KEY) as c:
        job = c.jobs.submit(prompt="Hello", model="template")
        job = c.jobs.wait(job.id)
        c.assets.download(job.asset_id, "hello.mp4")

Both clients have the same namespaces (``jobs``, ``assets``, ``collections``, ``finetunes``, ``outcomes``, ``keys``,
``budgets``, ``models``, ``webhooks``) and methods (``usage``, ``kpi``, ``verify``); the async ones are awaited,
and their ``list`` methods are async iterators.
Answers are the models of :mod:`reelfoundry.schema`. Errors: :class:`ApiError` when the server answers with a
problem, :class:`NetworkError` when it cannot be reached after the retries, :class:`IntegrityError` when a
download does not match its checksum. Retries: :mod:`reelfoundry.client.retry`.
"""

from __future__ import annotations

from reelfoundry.client._async import AsyncClient
from reelfoundry.client._sync import Client
from reelfoundry.client.errors import ApiError, IntegrityError, NetworkError
from reelfoundry.schema import WebhookDelivery, WebhookSecret

__all__ = ["ApiError", "AsyncClient", "Client", "IntegrityError", "NetworkError", "WebhookDelivery", "WebhookSecret"]
