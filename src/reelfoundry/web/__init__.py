"""The web UI under ``/ui/``: server-rendered pages for people (the review queue first)."""
