"""The clock: what runs when (schedule.py, as data) and the process that sends it."""
