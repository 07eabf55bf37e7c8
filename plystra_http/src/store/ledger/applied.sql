SELECT version, name, checksum FROM plystra.schema_migrations ORDER BY version
