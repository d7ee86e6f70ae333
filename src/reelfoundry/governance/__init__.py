"""Roles, tenants and what each may do."""
