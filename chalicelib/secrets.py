"""Secrets at rest: encrypted with the stack's KMS key, bound to where they belong.

The encryption context names the account, the record and the field, so a ciphertext copied
into another record (or read back for another field) fails to decrypt. Plain values exist
only in memory, for the call that needs them; they are never returned or logged.
"""
from __future__ import annotations

import base64
import functools

from chalicelib import settings


@functools.cache
def _kms(region: str):
    import boto3

    return boto3.client("kms", region_name=region)


def _context(account_id: str, record: str, field: str) -> dict[str, str]:
    return {"purpose": "cloudpay-secret", "account": account_id, "record": record, "field": field}


def encrypt(plaintext: str, *, account_id: str, record: str, field: str) -> str:
    config = settings.current()
    answer = _kms(config.region).encrypt(KeyId=config.kms_key_id, Plaintext=plaintext.encode(),
                                         EncryptionContext=_context(account_id, record, field))
    return base64.b64encode(answer["CiphertextBlob"]).decode()


def decrypt(ciphertext: str, *, account_id: str, record: str, field: str) -> str:
    answer = _kms(settings.current().region).decrypt(CiphertextBlob=base64.b64decode(ciphertext),
                                                     EncryptionContext=_context(account_id, record, field))
    return answer["Plaintext"].decode()
