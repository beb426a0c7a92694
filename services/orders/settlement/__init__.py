"""Project owners, the split of every payment, monthly statements, payouts, reconciliation."""
