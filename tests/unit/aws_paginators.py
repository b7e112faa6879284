"""botocore's own paginators over a test double's list call, so that code under test pages
through a stub exactly as it pages through a real client (NextToken, page size, limits)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.session
from botocore.paginate import Paginator


def paginator(service: str, operation: str, method: Callable[..., dict[str, Any]]) -> Paginator:
    """botocore's paginator of `service`'s `operation` (e.g. "ListIngestions") calling `method`."""
    session = botocore.session.get_session()
    config = session.get_paginator_model(service).get_paginator(operation)
    return Paginator(method, config, session.get_service_model(service).operation_model(operation))
