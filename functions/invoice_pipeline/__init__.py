"""Invoice extraction pipeline: all the logic behind the producer, consumer and migrate handlers."""
