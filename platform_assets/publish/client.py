"""A small client for the parts of Grafana's HTTP API the publish assets use.

Every call has a timeout; every failure raises ``GrafanaError`` naming the step, the HTTP
status and Grafana's message. Endpoints (Grafana 10/11): /api/folders, /api/datasources,
/api/dashboards/db, /api/dashboards/uid, /api/v1/provisioning/alert-rules and rule groups,
/api/v1/provisioning/contact-points and /api/v1/provisioning/policies.
"""

from __future__ import annotations

import re
from typing import Any

import requests

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds: a dead Grafana fails fast, a slow one gets time
# Grafana's refusals to change a file-provisioned resource through the API: "Cannot save provisioned
# dashboard" (400), "cannot change provenance from 'file' to 'api'" (alert rules, contact points),
# "Cannot update read-only data source" (403).
PROVISIONED = re.compile(r"provisioned dashboard|provenance|read-only data ?source", re.IGNORECASE)
PROVISIONED_HINT = (
    " (Grafana holds this resource from a provisioning file: remove it from Grafana's provisioning"
    " and restart Grafana; the publish assets are its one source, docs/deploy.md)"
)


class GrafanaError(RuntimeError):
    """A Grafana API call failed; ``status`` is the HTTP status (None when unreachable)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class GrafanaClient:
    def __init__(self, url: str, token: str | None = None, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> GrafanaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, what: str, ok: tuple[int, ...] = (200,), **kw: Any) -> requests.Response:
        """One call; statuses outside ``ok`` raise GrafanaError("<what>: HTTP <status> ...")."""
        try:
            resp = self.session.request(method, f"{self.url}{path}", timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise GrafanaError(f"{what}: Grafana at {self.url} is unreachable ({type(exc).__name__}: {exc})") from exc
        if resp.status_code not in ok:
            body = _body(resp)
            message = body.get("message") if isinstance(body, dict) else str(body)[:300]
            hint = " (check GRAFANA_API_TOKEN)" if resp.status_code in (401, 403) else ""
            if PROVISIONED.search(str(message)):
                hint = PROVISIONED_HINT
            raise GrafanaError(
                f"{what}: {method} {path} answered HTTP {resp.status_code}: {message}{hint}", resp.status_code, body
            )
        return resp

    # Folders -------------------------------------------------------------------------------
    def ensure_folder(self, uid: str, title: str) -> dict[str, Any]:
        """Creates the folder, or renames it when its title differs; returns Grafana's folder."""
        what = f"folder {uid!r}"
        resp = self.request("GET", f"/api/folders/{uid}", what, ok=(200, 404))
        if resp.status_code == 404:
            created = self.request("POST", "/api/folders", what, ok=(200, 409), json={"uid": uid, "title": title})
            if created.status_code == 200:
                return {**created.json(), "action": "created"}
            resp = self.request("GET", f"/api/folders/{uid}", what)  # created meanwhile by someone else
        folder = resp.json()
        if folder.get("title") == title:
            return {**folder, "action": "unchanged"}
        body = {"title": title, "overwrite": True}  # overwrite: no version check on a rename
        return {**self.request("PUT", f"/api/folders/{uid}", what, json=body).json(), "action": "updated"}

    # Datasources ---------------------------------------------------------------------------
    def upsert_datasource(self, body: dict[str, Any]) -> dict[str, Any]:
        """Creates or updates the datasource by uid. A different datasource with the same name
        is a 409 from Grafana; the error says so."""
        uid = body["uid"]
        what = f"datasource {uid!r}"
        found = self.request("GET", f"/api/datasources/uid/{uid}", what, ok=(200, 404))
        if found.status_code == 200:
            resp = self.request("PUT", f"/api/datasources/uid/{uid}", what, json=body)
            return {**resp.json(), "action": "updated"}
        resp = self.request("POST", "/api/datasources", what, ok=(200, 409), json=body)
        if resp.status_code == 409:
            raise GrafanaError(
                f"{what}: another datasource is already named {body['name']!r} (Grafana: {_body(resp)}); "
                "rename or delete it, or give it this uid",
                409,
                _body(resp),
            )
        return {**resp.json(), "action": "created"}

    def get_datasource(self, uid: str) -> dict[str, Any]:
        return self.request("GET", f"/api/datasources/uid/{uid}", f"datasource {uid!r}").json()

    # Dashboards ----------------------------------------------------------------------------
    def post_dashboard(
        self, model: dict[str, Any], folder_uid: str, overwrite: bool = True, message: str = ""
    ) -> dict[str, Any]:
        """POST /api/dashboards/db: returns {uid, url, version, status, ...}. With overwrite=False
        an existing uid or title, or a stale ``version`` in the model, is Grafana's 412."""
        body = {"dashboard": {**model, "id": None}, "folderUid": folder_uid, "overwrite": overwrite}
        if message:
            body["message"] = message
        what = f"dashboard {model.get('uid')!r}"
        return self.request("POST", "/api/dashboards/db", what, json=body).json()

    def get_dashboard(self, uid: str) -> dict[str, Any]:
        return self.request("GET", f"/api/dashboards/uid/{uid}", f"dashboard {uid!r}").json()

    # Alert rules ---------------------------------------------------------------------------
    def upsert_alert_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        """Creates or replaces the rule by uid through the provisioning API. Provenance stays
        "api" (no X-Disable-Provenance): the rules are locked in the UI, like the dashboards."""
        uid = rule["uid"]
        what = f"alert rule {uid!r}"
        found = self.request("GET", f"/api/v1/provisioning/alert-rules/{uid}", what, ok=(200, 404))
        if found.status_code == 200:
            resp = self.request("PUT", f"/api/v1/provisioning/alert-rules/{uid}", what, json=rule)
            return {**resp.json(), "action": "updated"}
        resp = self.request("POST", "/api/v1/provisioning/alert-rules", what, ok=(200, 201), json=rule)
        return {**resp.json(), "action": "created"}

    def get_alert_rule(self, uid: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v1/provisioning/alert-rules/{uid}", f"alert rule {uid!r}").json()

    def set_rule_group_interval(self, folder_uid: str, group: str, interval_s: int) -> dict[str, Any]:
        path = f"/api/v1/provisioning/folder/{folder_uid}/rule-groups/{group}"
        what = f"rule group {group!r}"
        current = self.request("GET", path, what).json()
        body = {**current, "interval": interval_s}
        return self.request("PUT", path, what, json=body).json()

    # Contact points and notification policies -------------------------------------------
    def upsert_contact_point(self, point: dict[str, Any]) -> dict[str, Any]:
        """Creates or replaces the contact point by uid (provisioning API; Grafana answers 202)."""
        uid = point["uid"]
        what = f"contact point {uid!r}"
        found = self.request("GET", "/api/v1/provisioning/contact-points", what).json()
        if any(p.get("uid") == uid for p in found):
            self.request("PUT", f"/api/v1/provisioning/contact-points/{uid}", what, ok=(200, 202), json=point)
            return {**point, "action": "updated"}
        self.request("POST", "/api/v1/provisioning/contact-points", what, ok=(200, 201, 202), json=point)
        return {**point, "action": "created"}

    def get_policy_tree(self) -> dict[str, Any]:
        return self.request("GET", "/api/v1/provisioning/policies", "notification policy tree").json()

    def put_policy_tree(self, tree: dict[str, Any]) -> None:
        self.request("PUT", "/api/v1/provisioning/policies", "notification policy tree", ok=(200, 202), json=tree)


def _body(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text[:300]
