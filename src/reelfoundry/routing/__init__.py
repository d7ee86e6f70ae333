"""The routing layer: which model of the portfolio runs a request, and why. Pure: request, cards and state in,
a RoutePlan out."""

from reelfoundry.routing.plan import RouterState, Unroutable, plan, resolve_params

__all__ = ["RouterState", "Unroutable", "plan", "resolve_params"]
