"""Where the alert rules notify: one webhook contact point and the notification policy route to it.

Every rule carries the label team=data-platform (alerts.py); the route matches that label, so the
platform's alerts go to its webhook whatever else the Grafana's policy tree routes. Published through
the provisioning API, the route is merged into the existing tree (other routes stay); the
file-provisioned Grafana of docker/ gets the whole tree, with the webhook as its default receiver.
"""

from __future__ import annotations

import copy
from typing import Any

ORG_ID = 1
CONTACT_POINT_UID = "platform-webhook"
CONTACT_POINT_NAME = "platform-webhook"
TEAM_MATCHER = ["team", "=", "data-platform"]
GROUP_BY = ["grafana_folder", "alertname"]
WEBHOOK_URL_ENV = "ALERT_WEBHOOK_URL"  # the setting that holds the webhook's URL


def contact_point(url: str) -> dict[str, Any]:
    """The contact point in the provisioning API's shape (EmbeddedContactPoint)."""
    return {
        "uid": CONTACT_POINT_UID,
        "name": CONTACT_POINT_NAME,
        "type": "webhook",
        "settings": {"url": url, "httpMethod": "POST"},
        "disableResolveMessage": False,  # resolved alerts are posted too
    }


def platform_route() -> dict[str, Any]:
    return {
        "receiver": CONTACT_POINT_NAME,
        "object_matchers": [TEAM_MATCHER],
        "group_by": GROUP_BY,
        "group_wait": "30s",  # a burst that trips several rules is one notification
        "group_interval": "5m",
        "repeat_interval": "4h",
    }


def merged_policy_tree(current: dict[str, Any]) -> dict[str, Any]:
    """``current`` with the platform's route in place of any route matching the same label (or
    appended as the first route); everything else in the tree is kept as it was."""
    tree = copy.deepcopy(current)
    routes = [r for r in tree.get("routes") or [] if r.get("object_matchers") != [TEAM_MATCHER]]
    tree["routes"] = [platform_route(), *routes]
    return tree


def provisioning_file() -> dict[str, Any]:
    """Contact point and policy tree in Grafana's file-provisioning format; the URL is read from the
    container's environment when Grafana starts."""
    receiver = {**contact_point("${" + WEBHOOK_URL_ENV + "}")}
    del receiver["name"]
    return {
        "apiVersion": 1,
        "contactPoints": [{"orgId": ORG_ID, "name": CONTACT_POINT_NAME, "receivers": [receiver]}],
        "policies": [
            {"orgId": ORG_ID, "receiver": CONTACT_POINT_NAME, "group_by": GROUP_BY, "routes": [platform_route()]}
        ],
    }
