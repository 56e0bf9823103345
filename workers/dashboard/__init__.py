"""The ops dashboard: queue depths and ages, dead letters with one-click retry, payments and timelines."""
