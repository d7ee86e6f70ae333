"""Media storage (the DAM's file side)."""
