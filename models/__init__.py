"""The data layer: SQLAlchemy 2.0 typed models and the store. Imports neither web nor tasks."""

from models.audit import AuditEvent
from models.db import Base
from models.group import Group, Membership
from models.organization import Organization, ScimToken
from models.outbox import Job, SentMail
from models.user import User

__all__ = [
    "AuditEvent",
    "Base",
    "Group",
    "Job",
    "Membership",
    "Organization",
    "ScimToken",
    "SentMail",
    "User",
]
