"""Edges that read from Kafka: the processor and projector runtimes, the DLQ, tail."""
