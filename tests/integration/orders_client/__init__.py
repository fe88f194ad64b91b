"""orders_client against the real services."""
