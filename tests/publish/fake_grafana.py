"""An in-memory HTTP fake of the parts of Grafana's API the publish assets use.

Modelled on Grafana's documented behaviour (HTTP API reference, 10.x/11.x):
- auth: ``Authorization: Bearer <token>``; anything else is 401 ``{"message": "Unauthorized"}``;
- folders: POST with a uid (or title) that exists is 409; PUT renames and bumps the version;
- datasources by uid: POST with a name (or uid) that exists is 409; PUT by uid updates;
- dashboards: POST /api/dashboards/db saves version 1, then +1 per save. Without overwrite, an
  existing uid whose stored version differs from the posted one (or none posted) is 412
  ``version-mismatch``, and another dashboard with the same title in the folder is 412 ``name-exists``;
- alert rules provisioning: create (409 on an existing uid, 400 on an unknown folder), replace
  by uid, read back; rule groups: read and set the interval.
- roles: the admin login (HTTP Basic) and the fixture token are Admin; a service-account token has
  its account's role. Reads need Viewer, writes Editor, datasource and service-account calls Admin
  (RBAC's datasources:write and serviceaccounts:*); short of it: 403 "You'll need additional
  permissions...".
- service accounts (``/api/serviceaccounts``): search by name, create (400 on a taken name), change
  the role (PATCH); tokens: list, create (409 on a taken name; the key is shown once), delete.
- file-provisioned resources (``provision_*``, what Grafana loads from its provisioning folder):
  saving such a dashboard through the API is 400 "Cannot save provisioned dashboard"; replacing such
  an alert rule is Grafana 11's "cannot change provenance from 'file' to 'api'" (the provisioning
  service's error, answered 500 by the route: no status of its own); updating such a (read-only)
  datasource is 403 "Cannot update read-only data source".
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

ROLES = ("Viewer", "Editor", "Admin")


class FakeGrafana:
    def __init__(self, token: str = "fake-token", admin_user: str = "admin", admin_password: str = "admin-pw") -> None:
        self.token = token
        self.admin = (admin_user, admin_password)
        self.service_accounts: dict[int, dict[str, Any]] = {}
        self.sa_tokens: dict[str, dict[str, Any]] = {}  # key -> {id, name, sa_id}
        self.provisioned_dashboards: set[str] = set()
        self.provisioned_datasources: set[str] = set()
        self.lock = threading.Lock()
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.rules: dict[str, dict[str, Any]] = {}
        self.group_intervals: dict[tuple[str, str], int] = {}
        self.contact_points: dict[str, dict[str, Any]] = {}
        # a new Grafana's tree: everything goes to the default e-mail contact point
        self.policy_tree: dict[str, Any] = {
            "receiver": "grafana-default-email",
            "group_by": ["grafana_folder", "alertname"],
        }
        self.requests: list[tuple[str, str]] = []
        self._ids = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeGrafana:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # Routing -----------------------------------------------------------------------------
    def handle(self, method: str, path: str, headers: Any, body: Any) -> tuple[int, Any]:
        """One request; a GET's handler gets the query string (name -> last value) as its body."""
        path, _, query = path.partition("?")
        self.requests.append((method, path))
        if path == "/api/health":
            return 200, {"database": "ok", "version": "fake"}
        role = self.role_of(headers.get("Authorization") or "")
        if role is None:
            return 401, {"message": "Unauthorized"}
        needed, action = self._needed(method, path)
        if ROLES.index(role) < ROLES.index(needed):
            return 403, {
                "message": f"You'll need additional permissions to perform this action. Permissions needed: {action}",
                "title": "Access denied",
            }
        if method == "GET":
            body = {k: v[-1] for k, v in parse_qs(query).items()}
        for pattern, handler in self.routes:
            m = re.fullmatch(pattern, f"{method} {path}")
            if m:
                with self.lock:
                    return handler(self, body, *m.groups())
        return 404, {"message": "Not found"}

    def role_of(self, authorization: str) -> str | None:
        scheme, _, credentials = authorization.partition(" ")
        if scheme == "Basic":
            try:
                user, _, password = base64.b64decode(credentials).decode().partition(":")
            except ValueError:
                return None
            return "Admin" if (user, password) == self.admin else None
        if scheme != "Bearer":
            return None
        if credentials == self.token:
            return "Admin"
        token = self.sa_tokens.get(credentials)
        account = self.service_accounts.get(token["sa_id"]) if token else None
        return account["role"] if account and not account["isDisabled"] else None

    @staticmethod
    def _needed(method: str, path: str) -> tuple[str, str]:
        """(least role, RBAC action) a request needs."""
        if path.startswith("/api/serviceaccounts"):
            return "Admin", "serviceaccounts:write" if method != "GET" else "serviceaccounts:read"
        if method == "GET":
            return "Viewer", "read"
        if path.startswith("/api/datasources"):
            return "Admin", "datasources:write"
        return "Editor", "write"

    # File provisioning (what Grafana loads from /etc/grafana/provisioning at start) -------
    def provision_dashboard(self, model: dict[str, Any], folder_uid: str) -> None:
        with self.lock:
            if folder_uid not in self.folders:  # the file provider creates its folder
                self.create_folder({"uid": folder_uid, "title": folder_uid})
            self.save_dashboard({"dashboard": model, "folderUid": folder_uid, "overwrite": True})
            self.provisioned_dashboards.add(model["uid"])

    def provision_rule(self, rule: dict[str, Any]) -> None:
        with self.lock:
            self.rules[rule["uid"]] = {**rule, "id": self._next_id(), "provenance": "file"}

    def provision_datasource(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.datasources[body["uid"]] = {**body, "id": self._next_id(), "version": 1, "readOnly": True}
            self.provisioned_datasources.add(body["uid"])

    def get_folder(self, _body: Any, uid: str) -> tuple[int, Any]:
        folder = self.folders.get(uid)
        return (200, folder) if folder else (404, {"message": "folder not found"})

    def create_folder(self, body: Any) -> tuple[int, Any]:
        uid, title = body.get("uid"), body.get("title")
        if uid in self.folders or any(f["title"] == title for f in self.folders.values()):
            return 409, {"message": "a folder with the same uid or title already exists"}
        folder = {"id": self._next_id(), "uid": uid, "title": title, "url": f"/dashboards/f/{uid}/", "version": 1}
        self.folders[uid] = folder
        return 200, folder

    def update_folder(self, body: Any, uid: str) -> tuple[int, Any]:
        folder = self.folders.get(uid)
        if not folder:
            return 404, {"message": "folder not found"}
        if not body.get("overwrite") and body.get("version") != folder["version"]:
            return 412, {"message": "the folder has been changed by someone else", "status": "version-mismatch"}
        folder.update(title=body["title"], version=folder["version"] + 1)
        return 200, folder

    def get_datasource(self, _body: Any, uid: str) -> tuple[int, Any]:
        ds = self.datasources.get(uid)
        if not ds:
            return 404, {"message": "Data source not found"}
        public = {k: v for k, v in ds.items() if k != "secureJsonData"}
        return 200, {**public, "secureJsonFields": {k: True for k in ds.get("secureJsonData", {})}}

    def create_datasource(self, body: Any) -> tuple[int, Any]:
        if any(d["name"] == body.get("name") for d in self.datasources.values()) or body.get("uid") in self.datasources:
            return 409, {"message": "data source with the same name already exists"}
        ds = {**body, "id": self._next_id(), "version": 1}
        self.datasources[ds["uid"]] = ds
        return 200, {"datasource": ds, "id": ds["id"], "name": ds["name"], "message": "Datasource added"}

    def update_datasource(self, body: Any, uid: str) -> tuple[int, Any]:
        ds = self.datasources.get(uid)
        if not ds:
            return 404, {"message": "Data source not found"}
        if ds.get("readOnly"):
            return 403, {"message": "Cannot update read-only data source"}
        if any(d["name"] == body.get("name") and u != uid for u, d in self.datasources.items()):
            return 409, {"message": "data source with the same name already exists"}
        ds.update({**body, "uid": uid, "version": ds["version"] + 1})
        return 200, {"datasource": ds, "id": ds["id"], "name": ds["name"], "message": "Datasource updated"}

    def save_dashboard(self, body: Any) -> tuple[int, Any]:
        model, folder_uid, overwrite = body.get("dashboard") or {}, body.get("folderUid", ""), body.get("overwrite")
        uid = model.get("uid")
        if not uid or not model.get("title"):
            return 400, {"message": "Dashboard title and uid are required"}
        if folder_uid and folder_uid not in self.folders:
            return 400, {"message": "folder not found", "status": "folder-not-found"}
        existing = self.dashboards.get(uid)
        if uid in self.provisioned_dashboards:
            return 400, {"message": "Cannot save provisioned dashboard"}
        same_title = [
            u for u, d in self.dashboards.items()
            if u != uid and d["dashboard"]["title"] == model["title"] and d["folderUid"] == folder_uid
        ]  # fmt: skip
        if not overwrite:
            if same_title:
                return 412, {"message": "A dashboard with the same name already exists", "status": "name-exists"}
            if existing and model.get("version") != existing["dashboard"]["version"]:
                return 412, {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"}
        version = existing["dashboard"]["version"] + 1 if existing else 1
        ident = existing["dashboard"]["id"] if existing else self._next_id()
        slug = re.sub(r"[^a-z0-9]+", "-", model["title"].lower()).strip("-")
        stored = {**model, "id": ident, "version": version}
        self.dashboards[uid] = {"dashboard": stored, "folderUid": folder_uid, "slug": slug}
        url = f"/d/{uid}/{slug}"
        return 200, {"id": ident, "uid": uid, "url": url, "status": "success", "version": version, "slug": slug}

    def get_dashboard(self, _body: Any, uid: str) -> tuple[int, Any]:
        d = self.dashboards.get(uid)
        if not d:
            return 404, {"message": "Dashboard not found"}
        meta = {"folderUid": d["folderUid"], "version": d["dashboard"]["version"], "url": f"/d/{uid}/{d['slug']}"}
        return 200, {"dashboard": d["dashboard"], "meta": meta}

    def create_rule(self, body: Any) -> tuple[int, Any]:
        uid = body.get("uid")
        if uid in self.rules:
            return 409, {"message": "alert rule with the same uid already exists"}
        if body.get("folderUID") not in self.folders:
            return 400, {"message": "folder does not exist"}
        rule = {**body, "id": self._next_id(), "provenance": "api"}
        self.rules[uid] = rule
        return 201, rule

    def get_rule(self, _body: Any, uid: str) -> tuple[int, Any]:
        rule = self.rules.get(uid)
        return (200, rule) if rule else (404, {"message": "rule not found"})

    def update_rule(self, body: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.rules:
            return 404, {"message": "rule not found"}
        stored = self.rules[uid].get("provenance") or ""
        if stored not in ("", "api"):
            return 500, {"message": f"cannot change provenance from '{stored}' to 'api'"}
        self.rules[uid] = {**body, "uid": uid, "id": self.rules[uid]["id"], "provenance": "api"}
        return 200, self.rules[uid]

    def get_group(self, _body: Any, folder: str, group: str) -> tuple[int, Any]:
        rules = [r for r in self.rules.values() if r.get("folderUID") == folder and r.get("ruleGroup") == group]
        if not rules:
            return 404, {"message": "rule group not found"}
        interval = self.group_intervals.get((folder, group), 60)
        return 200, {"title": group, "folderUid": folder, "interval": interval, "rules": rules}

    def put_group(self, body: Any, folder: str, group: str) -> tuple[int, Any]:
        self.group_intervals[(folder, group)] = int(body["interval"])
        return self.get_group(None, folder, group)

    def list_contact_points(self, _body: Any) -> tuple[int, Any]:
        return 200, list(self.contact_points.values())

    def create_contact_point(self, body: Any) -> tuple[int, Any]:
        if not body.get("name") or not body.get("type") or not isinstance(body.get("settings"), dict):
            return 400, {"message": "contact point needs name, type and settings"}
        if body["type"] == "webhook" and not body["settings"].get("url"):
            return 400, {"message": "webhook contact point: url is required"}
        uid = body.get("uid") or f"cp{self._next_id()}"
        if uid in self.contact_points:
            return 409, {"message": "contact point with the same uid already exists"}
        self.contact_points[uid] = {**body, "uid": uid, "provenance": "api"}
        return 202, self.contact_points[uid]

    def update_contact_point(self, body: Any, uid: str) -> tuple[int, Any]:
        if uid not in self.contact_points:
            return 404, {"message": "contact point not found"}
        self.contact_points[uid] = {**body, "uid": uid, "provenance": "api"}
        return 202, {"message": "contactpoint updated"}

    def get_policies(self, _body: Any) -> tuple[int, Any]:
        return 200, self.policy_tree

    def put_policies(self, body: Any) -> tuple[int, Any]:
        names = {p["name"] for p in self.contact_points.values()} | {"grafana-default-email"}

        def receivers(route: dict[str, Any]) -> list[str]:
            return [route.get("receiver", ""), *(r for sub in route.get("routes") or [] for r in receivers(sub))]

        unknown = [r for r in receivers(body) if r and r not in names]
        if not body.get("receiver") or unknown:
            return 400, {"message": f"invalid policy tree: unknown receiver(s) {unknown} or no root receiver"}
        self.policy_tree = body
        return 202, {"message": "policies updated"}

    # Service accounts ------------------------------------------------------------------
    def _account_view(self, account: dict[str, Any]) -> dict[str, Any]:
        tokens = sum(1 for t in self.sa_tokens.values() if t["sa_id"] == account["id"])
        return {**account, "tokens": tokens, "avatarUrl": ""}

    def search_service_accounts(self, query: Any) -> tuple[int, Any]:
        text = (query or {}).get("query", "").lower()
        found = [self._account_view(a) for a in self.service_accounts.values() if text in a["name"].lower()]
        return 200, {"totalCount": len(found), "serviceAccounts": found, "page": 1, "perPage": 1000}

    def create_service_account(self, body: Any) -> tuple[int, Any]:
        name, role = (body or {}).get("name"), (body or {}).get("role", "Viewer")
        if not name or role not in ROLES:
            return 400, {"message": "name is required and role must be Viewer, Editor or Admin"}
        if any(a["name"] == name for a in self.service_accounts.values()):
            return 400, {"message": "service account already exists"}
        ident = self._next_id()
        login = "sa-" + re.sub(r"[^a-z0-9-]+", "-", name.lower())
        account = {"id": ident, "name": name, "login": login, "orgId": 1, "isDisabled": False, "role": role}
        self.service_accounts[ident] = account
        return 201, self._account_view(account)

    def update_service_account(self, body: Any, ident: str) -> tuple[int, Any]:
        account = self.service_accounts.get(int(ident))
        if not account:
            return 404, {"message": "service account not found"}
        if "role" in (body or {}):
            if body["role"] not in ROLES:
                return 400, {"message": "invalid role"}
            account["role"] = body["role"]
        return 200, {"id": account["id"], "name": account["name"], "serviceaccount": self._account_view(account)}

    def list_sa_tokens(self, _query: Any, ident: str) -> tuple[int, Any]:
        if int(ident) not in self.service_accounts:
            return 404, {"message": "service account not found"}
        tokens = [
            {"id": t["id"], "name": t["name"], "created": "2026-01-01T00:00:00Z", "expiration": None,
             "secondsUntilExpiration": 0, "hasExpired": False}
            for t in self.sa_tokens.values() if t["sa_id"] == int(ident)
        ]  # fmt: skip
        return 200, tokens

    def create_sa_token(self, body: Any, ident: str) -> tuple[int, Any]:
        if int(ident) not in self.service_accounts:
            return 404, {"message": "service account not found"}
        name = (body or {}).get("name")
        if not name:
            return 400, {"message": "token name is required"}
        if any(t["name"] == name and t["sa_id"] == int(ident) for t in self.sa_tokens.values()):
            return 409, {"message": "service account token with given name already exists in the organization"}
        key = "glsa_" + secrets.token_hex(16)
        token = {"id": self._next_id(), "name": name, "sa_id": int(ident)}
        self.sa_tokens[key] = token
        return 200, {"id": token["id"], "name": name, "key": key}

    def delete_sa_token(self, _body: Any, ident: str, token_id: str) -> tuple[int, Any]:
        for key, t in list(self.sa_tokens.items()):
            if t["sa_id"] == int(ident) and t["id"] == int(token_id):
                del self.sa_tokens[key]
                return 200, {"message": "Service account token deleted"}
        return 404, {"message": "token not found"}

    def search(self, _query: Any) -> tuple[int, Any]:
        return 200, [
            {"uid": uid, "title": d["dashboard"]["title"], "type": "dash-db"} for uid, d in self.dashboards.items()
        ]

    routes = (
        (r"GET /api/folders/([\w-]+)", get_folder),
        (r"POST /api/folders", create_folder),
        (r"PUT /api/folders/([\w-]+)", update_folder),
        (r"GET /api/datasources/uid/([\w-]+)", get_datasource),
        (r"POST /api/datasources", create_datasource),
        (r"PUT /api/datasources/uid/([\w-]+)", update_datasource),
        (r"POST /api/dashboards/db", save_dashboard),
        (r"GET /api/dashboards/uid/([\w-]+)", get_dashboard),
        (r"POST /api/v1/provisioning/alert-rules", create_rule),
        (r"GET /api/v1/provisioning/alert-rules/([\w-]+)", get_rule),
        (r"PUT /api/v1/provisioning/alert-rules/([\w-]+)", update_rule),
        (r"GET /api/v1/provisioning/folder/([\w-]+)/rule-groups/([\w-]+)", get_group),
        (r"PUT /api/v1/provisioning/folder/([\w-]+)/rule-groups/([\w-]+)", put_group),
        (r"GET /api/v1/provisioning/contact-points", list_contact_points),
        (r"POST /api/v1/provisioning/contact-points", create_contact_point),
        (r"PUT /api/v1/provisioning/contact-points/([\w-]+)", update_contact_point),
        (r"GET /api/v1/provisioning/policies", get_policies),
        (r"PUT /api/v1/provisioning/policies", put_policies),
        (r"GET /api/serviceaccounts/search", search_service_accounts),
        (r"POST /api/serviceaccounts", create_service_account),
        (r"PATCH /api/serviceaccounts/(\d+)", update_service_account),
        (r"GET /api/serviceaccounts/(\d+)/tokens", list_sa_tokens),
        (r"POST /api/serviceaccounts/(\d+)/tokens", create_sa_token),
        (r"DELETE /api/serviceaccounts/(\d+)/tokens/(\d+)", delete_sa_token),
        (r"GET /api/search", search),
    )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    status, payload = 400, {"message": "bad request data"}
                else:
                    status, payload = fake.handle(self.command, self.path, self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:  # keep pytest output quiet
                pass

        return Handler
