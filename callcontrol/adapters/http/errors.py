"""The answer other than 2xx that the API's edge decides itself (bad token, bad parameter)."""

from __future__ import annotations


class ApiError(Exception):
    """An answer other than 2xx decided at the edge (bad token, bad body, ...): the edge
    middleware (api.py) turns it into {"error": message} with this status and headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.headers = status, headers or {}
