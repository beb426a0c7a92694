"""Pure rules: no Flask, no database, no broker."""
