"""What each queue's actors do, one module per queue (payments, webhooks, ach, emails, balances), with the
ledger, the reconciler and dead letters beside them."""
