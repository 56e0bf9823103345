"""Pure rules: no I/O, no clock; every decision the actors and flows act on, each with a table test."""
