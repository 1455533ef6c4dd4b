"""The pipeline's services (order, payment, inventory, shipping, projections) and the composition root."""
