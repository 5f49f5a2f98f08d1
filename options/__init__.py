"""Command-line options of the scripts: shared (base), train, test, export and enhance."""
