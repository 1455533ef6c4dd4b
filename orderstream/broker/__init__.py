"""The Kafka broker edge: the local Apache Kafka (Maven-fetched jars, KRaft), Docker, and topic administration."""
