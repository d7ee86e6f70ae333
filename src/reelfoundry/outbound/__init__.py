"""Requests the server makes on a user's behalf (webhooks, later vendor APIs and URL inputs).

Every one goes through :class:`GuardedClient`: only public addresses unless an operator allows a host,
the address checked is the address connected to, a capped answer and one deadline per attempt.
"""

from reelfoundry.outbound.addresses import parse_ip, refusal
from reelfoundry.outbound.client import GuardedClient, OutboundError, OutboundResponse
from reelfoundry.outbound.policy import Destination, OutboundPolicy, RefusedDestination, ResolutionFailed, Unresolvable

__all__ = [
    "Destination",
    "GuardedClient",
    "OutboundError",
    "OutboundPolicy",
    "OutboundResponse",
    "RefusedDestination",
    "ResolutionFailed",
    "Unresolvable",
    "parse_ip",
    "refusal",
]
