"""PostgreSQL: the models, migrations, sessions, and the queries grouped by table."""
