"""Live operation: the job-output reader, pollers with a persisted cursor, alert rules and
sinks. `jobmedic watch` drives them; everything here takes plain objects (a Store, a
taxonomy, a configuration dict) and reads no settings or environment of its own."""
