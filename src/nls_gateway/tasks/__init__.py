"""Per-namespace task handlers: engine results ↔ NLS events."""
