"""Runtime wiring of the claims pipeline: settings, topics, Avro codec, broker, workers, CLI."""
