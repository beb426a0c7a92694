"""Pure rules of the orders service: no Flask, no database, no broker."""
