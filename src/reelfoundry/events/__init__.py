"""Event delivery beyond the database: signed webhooks."""
