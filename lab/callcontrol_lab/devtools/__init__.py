"""Tools for developers: the test suite's and the benchmark's throw-away PostgreSQL."""
