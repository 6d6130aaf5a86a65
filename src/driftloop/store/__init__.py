"""Store: metadata (SQLAlchemy; SQLite default, PostgreSQL by URL) and artifacts (fsspec).

Rows never leave this package: every read returns the frozen dataclasses of `entities`.
"""
