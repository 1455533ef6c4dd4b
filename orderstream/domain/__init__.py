"""Pure domain code: commands, events, deciders and validation. No Kafka, SQL or clock in here."""
