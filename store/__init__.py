"""Persistence: SQLAlchemy 2 async models, the Database handle, repositories and migrations."""

from store.session import Database

__all__ = ["Database"]
