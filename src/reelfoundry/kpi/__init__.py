"""The KPI scorecard: the blueprint's 2025 figures from the platform's own records, and their trend charts."""

from reelfoundry.kpi.scorecard import scorecard

__all__ = ["scorecard"]
