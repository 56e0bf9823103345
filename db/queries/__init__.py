"""Query functions, one module per table group, session first: get_ raises RowMissing, find_ returns a row or None,
list_ returns rows, lock_ selects FOR UPDATE, insert_/add_ write new rows, move_/update_/mark_ change them, count_ counts."""


class RowMissing(LookupError):
    """A row that must exist does not."""
