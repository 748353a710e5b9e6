"""The qualflow command line: parsing, printing and exit codes over the library (see docs/architecture.md)."""
