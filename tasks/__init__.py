"""Remit's work: one module per Dramatiq queue on top (its actors), the logic in the packages below."""
