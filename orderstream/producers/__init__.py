"""Edges that write to Kafka: command senders and the load generator."""
