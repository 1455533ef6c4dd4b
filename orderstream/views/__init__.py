"""Read models: each projection folds orders.events into its own database (SQLite by default, PostgreSQL by URL).

- base.py: the row-change model and the fold helpers the pure projection functions share
- order_view.py, customer_view.py, sales_view.py: the pure projection functions (no SQL, no Kafka, no clock)
- tables.py: every table (SQLAlchemy Core), named per generation
- registry.py: each projection's spec (name, schema version, tables, project function)
- store.py: the one place that writes a projection's database (rows and offsets in one transaction)
- queries.py: the read side used by the CLI
- runner.py: `orderstream run projections`
- replay.py, replay_scope.py: `orderstream replay projection` (a shadow generation, swapped in atomically)
- time_travel.py: `query order --as-of`, folded from the order view's timeline
"""
