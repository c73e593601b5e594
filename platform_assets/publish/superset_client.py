"""A small client for the parts of Superset's REST API (6.x) the publish asset uses.

Login is ``POST /api/v1/security/login`` (database provider) for a JWT access token, then
``GET /api/v1/security/csrf_token/`` in the same session (its cookie) for the CSRF token every
write needs. The bundle goes to ``POST /api/v1/dashboard/import/`` (multipart: ``formData`` the
ZIP, ``overwrite``, ``passwords`` per database file). Every call has a timeout; a failure raises
``SupersetError`` naming the step, the HTTP status and Superset's message.
"""

from __future__ import annotations

import json
from typing import Any

import requests

DEFAULT_TIMEOUT = (5.0, 120.0)  # (connect, read): an import of the whole bundle takes seconds


class SupersetError(RuntimeError):
    """A Superset API call failed; ``status`` is the HTTP status (None when unreachable)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class SupersetClient:
    def __init__(self, url: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> SupersetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, what: str, **kw: Any) -> Any:
        """One call; a status other than 200 raises SupersetError("<what>: HTTP <status> ..."). JSON back."""
        try:
            resp = self.session.request(method, f"{self.url}{path}", timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise SupersetError(f"{what}: Superset at {self.url} is unreachable ({type(exc).__name__}: {exc})") from exc
        if resp.status_code != 200:
            raise SupersetError(f"{what}: HTTP {resp.status_code} {_message(resp)}", resp.status_code)
        return resp.json()

    def login(self, username: str, password: str) -> None:
        """A JWT for the API, and the CSRF token of this session for the writes."""
        body = {"username": username, "password": password, "provider": "db", "refresh": False}
        token = self.request("POST", "/api/v1/security/login", "login", json=body)["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"
        csrf = self.request("GET", "/api/v1/security/csrf_token/", "CSRF token")["result"]
        # Flask-WTF checks the Referer of an HTTPS request only; it is sent for a proxy that does.
        self.session.headers.update({"X-CSRFToken": csrf, "Referer": self.url})

    def import_dashboards(self, bundle: bytes, passwords: dict[str, str], overwrite: bool = True) -> None:
        files = {"formData": ("platform_superset.zip", bundle, "application/zip")}
        data = {"overwrite": "true" if overwrite else "false", "passwords": json.dumps(passwords)}
        self.request("POST", "/api/v1/dashboard/import/", "dashboard import", files=files, data=data)

    def _list(self, resource: str, columns: list[str]) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page = 0
        while True:
            q = f"(columns:!({','.join(columns)}),page:{page},page_size:100)"
            body = self.request("GET", f"/api/v1/{resource}/", f"list {resource}s", params={"q": q})
            rows.extend(body["result"])
            if len(rows) >= body["count"] or not body["result"]:
                return rows
            page += 1

    def dashboards(self) -> list[dict[str, Any]]:
        return self._list("dashboard", ["id", "uuid", "dashboard_title", "slug", "url"])

    def charts(self) -> list[dict[str, Any]]:
        return self._list("chart", ["id", "uuid", "slice_name", "viz_type", "datasource_id"])

    def datasets(self) -> list[dict[str, Any]]:
        return self._list("dataset", ["id", "uuid", "table_name", "schema"])

    def databases(self) -> list[dict[str, Any]]:
        return self._list("database", ["id", "uuid", "database_name", "backend"])

    def dashboard_charts(self, id_or_slug: int | str) -> list[dict[str, Any]]:
        return list(self.request("GET", f"/api/v1/dashboard/{id_or_slug}/charts", "dashboard charts")["result"])


def _message(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("errors") or body)[:2000]
    return str(body)[:2000]
