"""connectors/smpp."""
