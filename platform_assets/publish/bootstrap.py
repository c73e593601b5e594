"""Grafana bootstrap: the service account the publish assets use, and its token in a file.

    python -m platform_assets.publish.bootstrap     # docker/: the one-shot grafana-bootstrap service

Logs in with Grafana's admin user (HTTP Basic), then, through Grafana's service-account API:
1. finds the account ``platform-dagster`` by name (``GET /api/serviceaccounts/search``) or creates it
   (``POST /api/serviceaccounts``); an existing account is reused, its role set back if it drifted
   (``PATCH /api/serviceaccounts/<id>``);
2. keeps the token in ``GRAFANA_API_TOKEN_FILE`` when that file holds a token Grafana still accepts;
   otherwise deletes the account's earlier token of the same name and creates a new one
   (``POST /api/serviceaccounts/<id>/tokens``: Grafana shows a key once, so the file is the only copy)
   and writes it to the file (mode 0600, replaced atomically).

So a second run changes nothing, and a lost or revoked token is replaced. The role is Admin: the
``grafana/datasource`` asset creates and updates the datasource, which needs ``datasources:write``,
an Admin permission (Editor suffices for folders, dashboards and, since Grafana 11, alert
provisioning). Settings (environment): GRAFANA_URL, GRAFANA_ADMIN_USER (default admin),
GRAFANA_ADMIN_PASSWORD, GRAFANA_API_TOKEN_FILE. Every HTTP call has the client's timeouts.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from platform_assets.publish.client import DEFAULT_TIMEOUT, GrafanaClient, GrafanaError

SERVICE_ACCOUNT = "platform-dagster"
TOKEN_NAME = "platform-dagster"
ROLE = "Admin"
WAIT_S = 180.0  # Grafana's first start installs the ClickHouse plugin and migrates its database


@dataclass(frozen=True)
class BootstrapResult:
    account_id: int
    account: str  # "created" or "reused"
    role: str
    token: str  # "created", "replaced" (the file's token was missing or refused) or "reused"
    token_file: str


def wait_for_grafana(url: str, wait_s: float = WAIT_S, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> None:
    """Until ``GET /api/health`` answers 200, at most ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    with GrafanaClient(url, timeout=timeout) as client:
        while True:
            try:
                client.request("GET", "/api/health", "Grafana health")
                return
            except GrafanaError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(2.0)


def _admin_client(url: str, user: str, password: str, timeout: tuple[float, float]) -> GrafanaClient:
    client = GrafanaClient(url, timeout=timeout)
    client.session.auth = (user, password)
    return client


def _find_account(admin: GrafanaClient, name: str) -> dict[str, Any] | None:
    found = admin.request(
        "GET", "/api/serviceaccounts/search", f"service account {name!r}", params={"query": name, "perpage": 1000}
    ).json()
    matches = [a for a in found.get("serviceAccounts") or [] if a.get("name") == name]
    return matches[0] if matches else None


def ensure_account(admin: GrafanaClient, name: str = SERVICE_ACCOUNT, role: str = ROLE) -> tuple[dict[str, Any], str]:
    """The account and "created" or "reused"."""
    what = f"service account {name!r}"
    account = _find_account(admin, name)
    if account is None:
        body = {"name": name, "role": role, "isDisabled": False}
        return admin.request("POST", "/api/serviceaccounts", what, ok=(200, 201), json=body).json(), "created"
    if account.get("role") != role:
        admin.request("PATCH", f"/api/serviceaccounts/{account['id']}", what, json={"role": role})
        account = {**account, "role": role}
    return account, "reused"


def token_works(url: str, token: str, timeout: tuple[float, float] = DEFAULT_TIMEOUT) -> bool:
    """True when Grafana accepts the token (``GET /api/search`` answers 200, not 401)."""
    with GrafanaClient(url, token, timeout=timeout) as client:
        try:
            client.request("GET", "/api/search", "token check", params={"limit": 1})
        except GrafanaError as exc:
            if exc.status in (401, 403):
                return False
            raise
    return True


def write_token(path: Path, token: str) -> None:
    """Writes the token readable by its owner only, replacing the file in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".token-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_token(admin: GrafanaClient, account_id: int, name: str = TOKEN_NAME) -> str:
    """Deletes the account's tokens called ``name`` (their keys are lost), then creates one."""
    what = f"token {name!r} of service account {account_id}"
    tokens = admin.request("GET", f"/api/serviceaccounts/{account_id}/tokens", what).json()
    for old in tokens:
        if old.get("name") == name:
            admin.request("DELETE", f"/api/serviceaccounts/{account_id}/tokens/{old['id']}", what)
    created = admin.request("POST", f"/api/serviceaccounts/{account_id}/tokens", what, json={"name": name}).json()
    return str(created["key"])


def bootstrap(
    url: str,
    admin_user: str,
    admin_password: str,
    token_file: Path,
    *,
    account_name: str = SERVICE_ACCOUNT,
    role: str = ROLE,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    wait_s: float = WAIT_S,
) -> BootstrapResult:
    wait_for_grafana(url, wait_s, timeout)
    with _admin_client(url, admin_user, admin_password, timeout) as admin:
        try:
            account, account_action = ensure_account(admin, account_name, role)
        except GrafanaError as exc:
            if exc.status == 401:
                raise GrafanaError(
                    f"Grafana refused the admin login {admin_user!r}: check GRAFANA_ADMIN_USER and "
                    "GRAFANA_ADMIN_PASSWORD (docker/.env; Grafana keeps the password of its first start)",
                    exc.status,
                    exc.body,
                ) from exc
            raise
        current = token_file.read_text().strip() if token_file.is_file() else ""
        if current and token_works(url, current, timeout):
            token_action = "reused"
        else:
            write_token(token_file, new_token(admin, int(account["id"])))
            token_action = "replaced" if current or account_action == "reused" else "created"
    return BootstrapResult(int(account["id"]), account_action, role, token_action, str(token_file))


def settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    e = os.environ if env is None else env
    missing = [v for v in ("GRAFANA_URL", "GRAFANA_ADMIN_PASSWORD", "GRAFANA_API_TOKEN_FILE") if not e.get(v)]
    if missing:
        raise SystemExit(f"grafana-bootstrap: missing environment variables: {', '.join(missing)}")
    return {
        "url": e["GRAFANA_URL"],
        "admin_user": e.get("GRAFANA_ADMIN_USER") or "admin",
        "admin_password": e["GRAFANA_ADMIN_PASSWORD"],
        "token_file": e["GRAFANA_API_TOKEN_FILE"],
    }


def main(env: Mapping[str, str] | None = None) -> int:
    s = settings(env)
    try:
        result = bootstrap(s["url"], s["admin_user"], s["admin_password"], Path(s["token_file"]))
    except GrafanaError as exc:
        print(f"grafana-bootstrap: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(result)), flush=True)  # the token itself is never printed
    return 0


if __name__ == "__main__":
    sys.exit(main())
