"""Kafka plumbing: the local broker, topic administration and the Avro codec."""
