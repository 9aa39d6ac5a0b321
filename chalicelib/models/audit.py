"""The audit log: who changed what, when, in the console and on H5 pages."""
from __future__ import annotations

from pynamodb.attributes import MapAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.models.base import table_meta


class EntriesByEntity(GlobalSecondaryIndex):
    """One entity's entries (`provider#…`, `sub_merchant#…`) in time order, read newest first."""

    class Meta:
        index_name = "audit-by-entity"
        projection = AllProjection()

    entity_key = UnicodeAttribute(hash_key=True)  # "<account>#<entity>"
    entry_id = UnicodeAttribute(range_key=True)


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
    entity_key = UnicodeAttribute(null=True)

    by_entity = EntriesByEntity()

    def serialize(self, null_check: bool = True) -> dict:
        """Entries are only ever put, so the index key is derived here, once."""
        self.entity_key = f"{self.account_id}#{self.entity}"
        return super().serialize(null_check=null_check)
