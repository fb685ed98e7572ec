"""Data-layer failures; the web layer maps them to SCIM errors."""


class StoreError(Exception):
    pass


class DuplicateError(StoreError):
    """A uniqueness constraint (userName, group displayName) refused the write."""


class VersionConflict(StoreError):
    """The row changed since it was read (optimistic concurrency)."""


class NotFoundError(StoreError):
    pass
