"""AI FinOps: prices, metering (money, energy, carbon), budgets and usage reports."""
