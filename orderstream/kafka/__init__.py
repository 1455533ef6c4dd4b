"""Kafka plumbing: client configuration, topics, offsets, reading whole topics, read-your-writes tokens."""
