"""What every model shares: column types, row locking and SQLite's connection settings."""
