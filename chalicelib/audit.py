"""Recording and listing audit entries. Secret fields are recorded as "changed", never valued."""
from __future__ import annotations

import secrets as random
import time

from chalicelib import pagination
from chalicelib.models.audit import AuditEntry

AUDIT_LIST = "audit-log"
SECRET_CHANGE = "changed"


def record(account_id: str, actor: str, entity: str, action: str, changes: dict) -> AuditEntry:
    at_ms = int(time.time() * 1000)
    entry = AuditEntry(account_id=account_id, entry_id=f"{at_ms:015d}#{random.token_hex(4)}", at=at_ms // 1000,
                       actor=actor, entity=entity, action=action, changes=changes)
    entry.save(condition=AuditEntry.entry_id.does_not_exist())
    return entry


def list_entries(account_id: str, limit: int, cursor: str | None, entity: str | None = None) -> pagination.Page:
    """Newest first; one entity's entries come from their own index."""
    source, key = (AuditEntry.by_entity, f"{account_id}#{entity}") if entity else (AuditEntry, account_id)
    return pagination.query_page(source, key, AUDIT_LIST, limit, cursor, newest_first=True)


def entry_view(entry: AuditEntry) -> dict:
    return {"object": "audit_entry", "id": entry.entry_id, "at": entry.at, "actor": entry.actor,
            "entity": entry.entity, "action": entry.action, "changes": entry.changes.as_dict()}
