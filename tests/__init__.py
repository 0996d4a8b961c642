"""The test suites, one folder per package (a package only so that pytest puts the
repository root, not tests/, on sys.path for tests/conftest.py)."""
