"""One APIRouter per resource: orders (commands, queries, live events), stock, sales and customers, ops."""
