"""The ops subcommands of `remit`, one module per group; each has register(sub) (workers.cli lists them)."""
