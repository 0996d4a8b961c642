"""Benchmarks that compare this project with its peers (run with tox -e bench)."""
