"""The claims pipeline around the stage rules: Kafka, runtime, ingest, views, jobs, CLI."""
