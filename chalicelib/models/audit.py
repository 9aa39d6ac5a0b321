"""The audit log: who changed what, when, in the console and on H5 pages."""
from __future__ import annotations

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class AuditEntry(Model):
    """Keyed by the owning account; `entry_id` sorts by time (zero-padded ms + random)."""

    Meta = table_meta("audit_log_table")

    account_id = UnicodeAttribute(hash_key=True)
    entry_id = UnicodeAttribute(range_key=True)
    at = NumberAttribute()
    actor = UnicodeAttribute()
    entity = UnicodeAttribute()
    action = UnicodeAttribute()
    changes = MapAttribute(default=dict)
