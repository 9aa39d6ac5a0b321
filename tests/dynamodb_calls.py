"""Count the AWS API calls a piece of code makes (tests and benchmarks)."""
from __future__ import annotations

import contextlib
from collections import Counter

from botocore.client import BaseClient


@contextlib.contextmanager
def counting_aws_calls():
    """Yield a Counter of operation names for every botocore call made inside the block."""
    calls: Counter = Counter()
    original = BaseClient._make_api_call

    def counted(self, operation_name, api_params):
        calls[operation_name] = calls[operation_name] + 1
        return original(self, operation_name, api_params)

    BaseClient._make_api_call = counted
    try:
        yield calls
    finally:
        BaseClient._make_api_call = original


@contextlib.contextmanager
def recording_reads():
    """Yield a list with one (table, index, items read) per DynamoDB Query or Scan made inside
    the block; items read is the answer's ScannedCount, what DynamoDB evaluated (and bills)."""
    reads: list = []
    original = BaseClient._make_api_call

    def recorded(self, operation_name, api_params):
        answer = original(self, operation_name, api_params)
        if operation_name in ("Query", "Scan"):
            reads.append((api_params["TableName"], api_params.get("IndexName"), answer.get("ScannedCount", 0)))
        return answer

    BaseClient._make_api_call = recorded
    try:
        yield reads
    finally:
        BaseClient._make_api_call = original
