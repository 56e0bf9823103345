"""Query functions, one module per table group, session first; RowMissing is what a get_ raises."""

# The verbs: get_ returns the row or raises RowMissing, find_ returns it or None, list_ returns rows,
# lock_ selects FOR UPDATE, insert_/add_ write new rows, move_/update_/mark_ change rows, count_/sum_
# aggregate. A module imports as `from db.queries import payments as payment_rows`.


class RowMissing(LookupError):
    """A row that must exist does not."""
