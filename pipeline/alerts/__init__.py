"""Alert rules and their delivery: which articles alert, where to, and what was sent."""
