"""Read models: each projection folds its topics into its own database (SQLite by default, PostgreSQL by URL).

- order_view.py, customer_view.py, sales_view.py, stock_view.py, payment_view.py: one module per view holding
  everything about it - its name, schema version, tables, pure fold (no SQL, no Kafka, no clock), replay scope and
  queries - declared as its SPEC at the end of the module
- registry.py: the views (one line per view module); every list of views is derived from it
- spec.py: what a view declares (ProjectionSpec, ReplayScope)
- base.py: the row-change model and the fold helpers the pure projection functions share
- tables.py: the bookkeeping tables every projection shares (generation pointer, stored offsets)
- store.py: the one place that writes a projection's database (rows and offsets in one transaction)
- bulk.py: the bulk writes of a rebuild
- queries.py: ReadModel, the read-only handle every view's queries take
- replay_scope.py: how `replay projection --from-time` copies what it does not rebuild
"""
