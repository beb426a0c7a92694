"""Projects, their registry issuances (serial blocks) and their inventory."""
