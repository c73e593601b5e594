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
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeGrafana:
    def __init__(self, token: str = "fake-token") -> None:
        self.token = token
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
        self.requests.append((method, path))
        if path == "/api/health":
            return 200, {"database": "ok", "version": "fake"}
        if headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"message": "Unauthorized"}
        for pattern, handler in self.routes:
            m = re.fullmatch(pattern, f"{method} {path}")
            if m:
                with self.lock:
                    return handler(self, body, *m.groups())
        return 404, {"message": "Not found"}

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
                    status, payload = fake.handle(self.command, self.path.split("?")[0], self.headers, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:  # keep pytest output quiet
                pass

        return Handler
