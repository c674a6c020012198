"""Session store: records and artifacts of everything a session produces."""
