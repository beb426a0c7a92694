"""Orders service: projects and credit inventory, orders, payments, retirement, ledger."""
