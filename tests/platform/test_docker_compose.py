"""Consistency of the Docker deployment in docker/, checked without a Docker engine.

The compose file, its .env template, the mounted configuration files and the Dagster
image must agree with each other and with the variables the Python resources read.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from platform_assets.ingest import topics
from platform_assets.ingest.collector.attributes import DEFAULT_DELETE, DEFAULT_HASH
from platform_assets.ingest.collector.config import CollectorConfig, parse_hmac_keys
from platform_assets.ingest.collector.otlp import SIGNALS
from platform_assets.publish import alerts, notifications
from platform_assets.publish.assets import files_root
from platform_assets.publish.clickhouse_query import DATASOURCE_UID
from platform_assets.publish.dashboards import DASHBOARDS
from platform_assets.publish.datasource import DATASOURCE_NAME
from platform_assets.publish.resources import GrafanaResource
from platform_assets.registry import REQUIRED_ENV_VARS
from platform_assets.stack.servers.kafka import SETTINGS as EMBEDDED_KAFKA

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
ENV_EXAMPLE = DOCKER_DIR / ".env.example"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
DAGSTER_YAML = DOCKER_DIR / "dagster.yaml"
WORKSPACE = DOCKER_DIR / "workspace.docker.yaml"
GRAFANA_TREE = DOCKER_DIR / "grafana"  # generated files: a repository artifact, not mounted (docs/deploy.md)
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
OTELCOL_CONFIG = DOCKER_DIR / "otelcol/config.yaml"
DOCKER_REQUIREMENTS = DOCKER_DIR / "requirements.docker.txt"
DOCKERIGNORE = DOCKER_DIR / "Dockerfile.dockerignore"
LOCK = REPO_ROOT / "requirements.lock"
DOCKER_SOCKET = "/var/run/docker.sock"
# The encoding the ClickHouse Kafka tables read on the otlp_* topics (docs/ingest.md, "Sending data").
ACCEPTED_OTLP_ENCODING = "otlp_json"

PLATFORM_SERVICES = ("dagster-user-code", "dagster-webserver", "dagster-daemon")
EXPECTED_SERVICES = {
    "postgres",
    "dagster-postgres",
    "clickhouse",
    "kafka",
    "minio",
    "minio-init",
    "grafana",
    "grafana-bootstrap",
    "collector",
    "otelcol",
    *PLATFORM_SERVICES,
}
# Services that start only with their compose profile (`--profile <name>`).
PROFILED_SERVICES = {"otelcol": "otelcol"}
# Read by the resources but not required at load time; the compose file still sets them.
OPTIONAL_PLATFORM_VARS = ("PLATFORM_ENV", "GRAFANA_URL", "GRAFANA_API_TOKEN", "GRAFANA_API_TOKEN_FILE", "DAGSTER_HOME")
# Platform variables holding network addresses, each checked against the service it names.
ENDPOINT_VARS = (
    "CLICKHOUSE_HOST",
    "CLICKHOUSE_HTTP_PORT",
    "CLICKHOUSE_TCP_PORT",
    "POSTGRES_HOST",
    "POSTGRES_PORT",
    "KAFKA_BOOTSTRAP_SERVERS",
    "S3_ENDPOINT_URL",
    "GRAFANA_URL",
)
SECRET_NAME = re.compile(r"PASSWORD|SECRET")
GRAFANA_PLUGIN = "grafana-clickhouse-datasource"

# Compose interpolation: `$$` is an escaped dollar, `${NAME...}` and `$NAME` are references.
INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<braced>[A-Za-z_]\w*)(?P<modifier>[^}]*)\}|(?P<bare>[A-Za-z_]\w*))")


def load_yaml(path: Path) -> Any:
    name = path.relative_to(REPO_ROOT)
    assert path.is_file(), f"{name} is missing"
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        pytest.fail(f"{name} is not valid YAML: {error}")


def load_xml(path: Path) -> ET.Element:
    name = path.relative_to(REPO_ROOT)
    assert path.is_file(), f"{name} is missing"
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as error:
        pytest.fail(f"{name} is not valid XML: {error}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "compose file has no services mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def platform_env(compose: dict[str, Any]) -> dict[str, str]:
    env = compose.get("x-platform-env")
    assert isinstance(env, dict), "compose file has no `x-platform-env: &platform-env` mapping"
    return {key: str(value) for key, value in env.items()}


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whether written as a mapping or a KEY=VALUE list."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def strings(node: Any) -> list[str]:
    """Every string value (and mapping key) in a parsed YAML document."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in (*strings(key), *strings(value))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def references(node: Any) -> list[tuple[str, str]]:
    """(variable, modifier) for every interpolation in the document, e.g. ("X", ":?set")."""
    found = []
    for text in strings(node):
        for match in INTERPOLATION.finditer(text):
            name = match["braced"] or match["bare"]
            if name:
                found.append((name, match["modifier"] or ""))
    return found


def env_example_names() -> dict[str, str]:
    assert ENV_EXAMPLE.is_file(), "docker/.env.example is missing"
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"docker/.env.example: line {line!r} is not NAME=value"
            pairs[name.strip()] = value.strip()
    return pairs


def port_numbers(spec: str) -> set[int]:
    """Ports in "5432", "5432/tcp" or "8000-8002"."""
    spec = spec.split("/", 1)[0]
    low, _, high = spec.partition("-")
    return set(range(int(low), int(high or low) + 1))


def published(service: dict[str, Any]) -> list[tuple[int | None, int]]:
    """(host port or None, container port) for each `ports` entry."""
    pairs: list[tuple[int | None, int]] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            host = entry.get("published")
            pairs.append((int(host) if host else None, int(entry["target"])))
            continue
        parts = str(entry).rsplit(":", 2)
        container = port_numbers(parts[-1])
        host = port_numbers(parts[-2]) if len(parts) > 1 and parts[-2] else set()
        pairs.extend((min(host) + (port - min(container)) if host else None, port) for port in sorted(container))
    return pairs


def kafka_listeners(value: str) -> dict[str, tuple[str, int]]:
    """Listener name -> (host, port) from a Kafka `listeners` style string."""
    result = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, address = item.partition("://")
        host, _, port = address.rpartition(":")
        result[name] = (host, int(port))
    return result


def container_ports(service: dict[str, Any]) -> set[int]:
    """Ports the service's container listens on: published, exposed, or Kafka listeners."""
    ports = {container for _, container in published(service)}
    for entry in service.get("expose") or []:
        ports |= port_numbers(str(entry))
    listeners = environment(service).get("KAFKA_LISTENERS")
    if listeners:
        ports |= {port for _, port in kafka_listeners(listeners).values()}
    return ports


def command_option(service: dict[str, Any], *flags: str) -> str | None:
    command = service.get("command") or []
    args = command.split() if isinstance(command, str) else [str(arg) for arg in command]
    for index, arg in enumerate(args[:-1]):
        if arg in flags:
            return args[index + 1]
    return None


def mount_targets(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host source for each volume entry."""
    targets = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            targets[entry["target"]] = str(entry.get("source", ""))
        else:
            source, _, rest = str(entry).partition(":")
            targets[rest.split(":", 1)[0] if rest else source] = source if rest else ""
    return targets


def platform_endpoints(env: dict[str, str]) -> list[tuple[str, str, int]]:
    """(variable, host, port) for every network address in the platform environment."""
    endpoints = [
        ("CLICKHOUSE_HOST:CLICKHOUSE_HTTP_PORT", env["CLICKHOUSE_HOST"], int(env["CLICKHOUSE_HTTP_PORT"])),
        ("CLICKHOUSE_HOST:CLICKHOUSE_TCP_PORT", env["CLICKHOUSE_HOST"], int(env["CLICKHOUSE_TCP_PORT"])),
        ("POSTGRES_HOST:POSTGRES_PORT", env["POSTGRES_HOST"], int(env["POSTGRES_PORT"])),
    ]
    for server in env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
        host, _, port = server.strip().rpartition(":")
        endpoints.append(("KAFKA_BOOTSTRAP_SERVERS", host, int(port)))
    for name in ("S3_ENDPOINT_URL", "GRAFANA_URL"):
        url = urlsplit(env[name])
        endpoints.append((name, url.hostname or "", url.port or (443 if url.scheme == "https" else 80)))
    return endpoints


def test_expected_services_exist(services: dict[str, Any]) -> None:
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"docker-compose.yml lacks services: {sorted(missing)}"


def test_every_image_pins_a_tag_that_is_not_latest(services: dict[str, Any]) -> None:
    problems = []
    for name, service in services.items():
        image = service.get("image")
        if image is None:
            if "build" not in service:
                problems.append(f"{name}: neither image nor build")
            continue
        reference = str(image).split("@", 1)[0]
        last = reference.rsplit("/", 1)[-1]  # a registry host may carry a port, the tag never has "/"
        tag = last.partition(":")[2]
        if not tag:
            problems.append(f"{name}: image {image!r} has no explicit tag")
        elif tag == "latest":
            problems.append(f"{name}: image {image!r} uses the floating `latest` tag")
    assert not problems, "unpinned images:\n" + "\n".join(problems)


def test_platform_env_names_every_variable_the_resources_read(platform_env: dict[str, str]) -> None:
    missing = [name for name in (*REQUIRED_ENV_VARS, *OPTIONAL_PLATFORM_VARS) if name not in platform_env]
    assert not missing, f"x-platform-env lacks {missing}"
    assert platform_env["PLATFORM_ENV"] == "docker", (
        f"x-platform-env sets PLATFORM_ENV={platform_env['PLATFORM_ENV']!r}"
    )


@pytest.mark.parametrize("name", PLATFORM_SERVICES)
def test_platform_env_is_applied_to_every_dagster_service(
    name: str, services: dict[str, Any], platform_env: dict[str, str]
) -> None:
    env = environment(services[name])
    missing = sorted(key for key in platform_env if key not in env)
    different = sorted(key for key in platform_env if key in env and env[key] != platform_env[key])
    assert not missing and not different, (
        f"{name} does not use *platform-env: missing {missing}, overridden {different}"
    )


def test_platform_hosts_are_services_listening_on_the_configured_ports(
    services: dict[str, Any], platform_env: dict[str, str]
) -> None:
    missing = [name for name in ENDPOINT_VARS if name not in platform_env]
    assert not missing, f"x-platform-env lacks {missing}, so those endpoints cannot be checked"
    problems = []
    for variable, host, port in platform_endpoints(platform_env):
        if host not in services:
            problems.append(f"{variable}: host {host!r} is not a service in docker-compose.yml")
        elif port not in (listening := sorted(container_ports(services[host]))):
            problems.append(f"{variable}: {host}:{port}, but service {host} listens on {listening}")
    assert not problems, "platform environment points at the wrong place:\n" + "\n".join(problems)


def test_kafka_advertises_the_addresses_clients_use(services: dict[str, Any], platform_env: dict[str, str]) -> None:
    env = environment(services["kafka"])
    roles = {role.strip() for role in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
    assert roles == {"broker", "controller"}, f"kafka: KAFKA_PROCESS_ROLES={roles}, want broker,controller (KRaft)"
    listeners = kafka_listeners(env.get("KAFKA_LISTENERS", ""))
    advertised = kafka_listeners(env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    problems = []
    # Clients connect to the bootstrap address, then to whatever the broker advertises.
    for server in platform_env["KAFKA_BOOTSTRAP_SERVERS"].split(","):
        host, _, port = server.strip().rpartition(":")
        names = [name for name, (_, listen_port) in listeners.items() if listen_port == int(port)]
        if not names:
            problems.append(f"KAFKA_BOOTSTRAP_SERVERS port {port} matches no entry in KAFKA_LISTENERS")
        elif advertised.get(names[0]) != (host, int(port)):
            problems.append(f"listener {names[0]} advertises {advertised.get(names[0])}, clients dial {host}:{port}")
    # Listeners advertised as localhost must be published on the same host port.
    host_ports = {(host_port, container) for host_port, container in published(services["kafka"])}
    for name, (host, port) in advertised.items():
        listen_port = listeners.get(name, ("", None))[1]
        if host in ("localhost", "127.0.0.1") and (port, listen_port) not in host_ports:
            problems.append(
                f"listener {name} advertises {host}:{port}, "
                f"but kafka does not publish host port {port} to container port {listen_port}"
            )
    assert not problems, "kafka listeners are inconsistent:\n" + "\n".join(problems)


def test_postgres_enables_logical_replication(services: dict[str, Any]) -> None:
    command = services["postgres"].get("command") or ""
    text = command if isinstance(command, str) else " ".join(map(str, command))
    settings = dict(re.findall(r"-c\s+(\w+)=(\S+)", text))
    assert settings.get("wal_level") == "logical", f"postgres command does not set wal_level=logical: {text!r}"
    for name in ("max_replication_slots", "max_wal_senders"):
        assert int(settings.get(name, "0")) > 0, f"postgres command does not set {name} for CDC: {text!r}"


def test_compose_variables_are_documented_in_env_example(compose: dict[str, Any]) -> None:
    documented = env_example_names()
    used = references(compose)
    undocumented = sorted({name for name, _ in used} - documented.keys())
    assert not undocumented, f"docker-compose.yml references variables missing from docker/.env.example: {undocumented}"
    unused = sorted(documented.keys() - {name for name, _ in used})
    assert not unused, f"docker/.env.example defines variables docker-compose.yml never uses: {unused}"


def test_secrets_are_required_not_defaulted(compose: dict[str, Any]) -> None:
    weak = sorted(
        f"${{{name}{modifier}}}"
        for name, modifier in set(references(compose))
        if SECRET_NAME.search(name) and not modifier.startswith(":?")
    )
    assert not weak, f"secrets must use ${{VAR:?...}} so Compose fails when docker/.env lacks them: {weak}"


def test_mounted_and_built_paths_exist(services: dict[str, Any]) -> None:
    problems = []
    for name, service in services.items():
        for target, source in mount_targets(service).items():
            if source.startswith("/") and source != DOCKER_SOCKET:
                problems.append(f"{name}: mounts the host path {source}; only {DOCKER_SOCKET} is expected")
            if source.startswith("."):
                path = (DOCKER_DIR / source).resolve()
                if not path.exists():
                    problems.append(f"{name}: volume source {source} (for {target}) does not exist: {path}")
        build = service.get("build")
        if build is not None:
            build = {"context": build} if isinstance(build, str) else build
            context = (DOCKER_DIR / build.get("context", ".")).resolve()
            dockerfile = context / build.get("dockerfile", "Dockerfile")
            if not context.is_dir():
                problems.append(f"{name}: build context {context} is not a directory")
            if not dockerfile.is_file():
                problems.append(f"{name}: dockerfile {dockerfile} does not exist")
    assert not problems, "missing files:\n" + "\n".join(problems)


def test_clickhouse_config_files_are_mounted_and_set_kafka_and_cdc(services: dict[str, Any]) -> None:
    mounts = mount_targets(services["clickhouse"])
    expected = {
        "/etc/clickhouse-server/config.d/platform.xml": "./clickhouse/config.d/platform.xml",
        "/etc/clickhouse-server/users.d/platform.xml": "./clickhouse/users.d/platform.xml",
    }
    for target, source in expected.items():
        assert mounts.get(target) == source, f"clickhouse: {source} is not mounted at {target} (mounts: {mounts})"
    config = load_xml(DOCKER_DIR / "clickhouse/config.d/platform.xml")
    for name, value in (("session_timeout_ms", "6000"), ("heartbeat_interval_ms", "1000")):
        found = config.findtext(f"kafka/{name}")
        assert found == value, f"clickhouse/config.d/platform.xml: <kafka><{name}> is {found!r}, want {value}"
    users = load_xml(DOCKER_DIR / "clickhouse/users.d/platform.xml")
    setting = users.findtext("profiles/default/allow_experimental_materialized_postgresql_table")
    assert setting == "1", "users.d/platform.xml: the default profile must allow MaterializedPostgreSQL tables"
    env = environment(services["clickhouse"])
    for name in ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT"):
        assert env.get(name), f"clickhouse: {name} is not set, so the image entrypoint keeps the open `default` user"


def test_platform_credentials_match_the_servers(services: dict[str, Any], platform_env: dict[str, str]) -> None:
    pairs = [
        ("clickhouse", "CLICKHOUSE_USER", "CLICKHOUSE_USER"),
        ("clickhouse", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_PASSWORD"),
        ("postgres", "POSTGRES_USER", "POSTGRES_USER"),
        ("postgres", "POSTGRES_PASSWORD", "POSTGRES_PASSWORD"),
        ("postgres", "POSTGRES_DB", "POSTGRES_DB"),
        ("dagster-postgres", "DAGSTER_PG_USER", "POSTGRES_USER"),
        ("dagster-postgres", "DAGSTER_PG_PASSWORD", "POSTGRES_PASSWORD"),
        ("dagster-postgres", "DAGSTER_PG_DB", "POSTGRES_DB"),
        ("minio", "AWS_ACCESS_KEY_ID", "MINIO_ROOT_USER"),
        ("minio", "AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD"),
        ("minio-init", "S3_BUCKET", "S3_BUCKET"),
    ]
    problems = [
        f"x-platform-env {client}={platform_env.get(client)!r} but {service} {server}="
        f"{environment(services.get(service, {})).get(server)!r}"
        for service, client, server in pairs
        if platform_env.get(client) != environment(services.get(service, {})).get(server)
    ]
    assert not problems, "clients and servers disagree:\n" + "\n".join(problems)


def provisioned_declarations(root: Path) -> dict[str, set[str]]:
    """What Grafana would load from a provisioning tree: datasource uids/names, dashboard providers,
    alert rule uids, contact points and notification policy trees (by kind)."""
    found: dict[str, set[str]] = {"datasources": set(), "dashboards": set(), "rules": set(), "contact points": set(),
                                  "policies": set()}  # fmt: skip
    for path in sorted(root.rglob("*.y*ml")):
        doc = yaml.safe_load(path.read_text()) or {}
        rel = str(path.relative_to(root))
        for ds in doc.get("datasources") or []:
            found["datasources"] |= {str(ds.get("uid")), str(ds.get("name"))}
        for provider in doc.get("providers") or []:
            found["dashboards"].add(f"{rel}: provider {provider.get('name')!r}")
        for group in doc.get("groups") or []:
            found["rules"] |= {str(rule.get("uid")) for rule in group.get("rules") or []}
        for point in doc.get("contactPoints") or []:
            found["contact points"].add(str(point.get("name")))
        for tree in doc.get("policies") or []:
            found["policies"].add(f"{rel}: org {tree.get('orgId')} tree")
    return found


def published_by_assets() -> dict[str, set[str]]:
    """What the publish assets create or change through Grafana's API (platform_assets/publish/assets.py)."""
    return {
        "datasources": {DATASOURCE_UID, DATASOURCE_NAME},
        "dashboards": {spec.uid for spec in DASHBOARDS},
        "rules": {rule["uid"] for rule in alerts.alert_rules()},
        "contact points": {notifications.CONTACT_POINT_NAME},
        "policies": {"the org's tree (the platform route is merged into it)"},
    }


def conflicts(declared: dict[str, set[str]]) -> list[str]:
    """File-provisioned resources the assets also publish: Grafana refuses API writes to them. A
    dashboard provider or a policy tree in the files is a conflict whatever it loads."""
    ours = published_by_assets()
    found = []
    for kind in ("datasources", "rules", "contact points"):
        found += [f"{kind}: {item}" for item in sorted(declared[kind] & ours[kind])]
    found += [f"dashboards: {item}" for item in sorted(declared["dashboards"])]
    found += [f"policies: {item}" for item in sorted(declared["policies"])]
    return found


def grafana_provisioning_sources(service: dict[str, Any]) -> list[Path]:
    """Host paths the grafana service mounts at or below /etc/grafana/provisioning."""
    return [
        (DOCKER_DIR / source).resolve()
        for target, source in mount_targets(service).items()
        if PurePosixPath(target).is_relative_to(GRAFANA_PROVISIONING) and source.startswith(".")
    ]


def test_grafana_file_provisions_nothing_the_assets_publish(services: dict[str, Any]) -> None:
    """One publication path: the assets publish through the API; Grafana answers API changes to a
    file-provisioned dashboard, alert rule or datasource with an error, so none may be in the files."""
    grafana = services["grafana"]
    problems = []
    for source in grafana_provisioning_sources(grafana):
        root = source if source.is_dir() else source.parent
        problems += [f"{source.relative_to(REPO_ROOT)}: {c}" for c in conflicts(provisioned_declarations(root))]
    mounted = {source for source in mount_targets(grafana).values() if source.startswith(".")}
    dashboards = [s for s in mounted if (DOCKER_DIR / s).resolve().is_relative_to(GRAFANA_TREE.resolve())]
    problems += [f"mounts {s}: the generated files (docker/grafana) are not Grafana's source" for s in dashboards]
    assert not problems, "grafana file-provisions what the publish assets publish:\n" + "\n".join(problems)


def test_the_conflict_check_sees_the_generated_provisioning_files() -> None:
    """The generated tree (python -m platform_assets.publish.generate) declares the datasource, every
    alert rule, the contact point and the policy tree: mounting it again would fail the test above."""
    found = conflicts(provisioned_declarations(GRAFANA_TREE / "provisioning"))
    ours = published_by_assets()
    assert {f"rules: {uid}" for uid in ours["rules"]} <= set(found)
    assert f"datasources: {DATASOURCE_UID}" in found and f"contact points: {notifications.CONTACT_POINT_NAME}" in found
    assert any(item.startswith("policies:") for item in found)
    assert not (GRAFANA_TREE / "provisioning/dashboards").exists(), "the dashboard provider file is gone"


def test_grafana_clickhouse_plugin_is_pinned(services: dict[str, Any]) -> None:
    plugins = dict(
        [*entry.strip().split(" ", 1), ""][:2]
        for entry in environment(services["grafana"]).get("GF_INSTALL_PLUGINS", "").split(",")
        if entry.strip()
    )
    assert GRAFANA_PLUGIN in plugins, f"grafana: GF_INSTALL_PLUGINS lacks {GRAFANA_PLUGIN}"
    version = plugins[GRAFANA_PLUGIN].strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), (
        f"grafana: {GRAFANA_PLUGIN} is not pinned to a version (`<plugin> <x.y.z>`): {version!r}"
    )
    assert int(version.split(".")[0]) >= 4, f"{GRAFANA_PLUGIN} {version}: the panels use the 4.x plugin's formats"


def test_grafana_bootstrap_writes_the_token_the_dagster_services_read(
    services: dict[str, Any], platform_env: dict[str, str]
) -> None:
    bootstrap = services["grafana-bootstrap"]
    assert bootstrap.get("image") == services["dagster-user-code"].get("image"), "grafana-bootstrap: the Dagster image"
    assert bootstrap.get("command") == ["python", "-m", "platform_assets.publish.bootstrap"]
    assert (REPO_ROOT / "platform_assets/publish/bootstrap.py").is_file()
    assert str(bootstrap.get("restart")) == "no", "grafana-bootstrap is a one-shot"
    assert (bootstrap.get("depends_on") or {}).get("grafana", {}).get("condition") == "service_healthy"
    env = environment(bootstrap)
    assert env["GRAFANA_URL"] == platform_env["GRAFANA_URL"]
    assert env["GRAFANA_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    token_file = platform_env["GRAFANA_API_TOKEN_FILE"]
    assert env["GRAFANA_API_TOKEN_FILE"] == token_file
    token_dir = str(PurePosixPath(token_file).parent)
    source = mount_targets(bootstrap).get(token_dir)
    assert source and not source.startswith((".", "/")), f"grafana-bootstrap: no named volume at {token_dir}"
    user_code = services["dagster-user-code"]
    assert mount_targets(user_code).get(token_dir) == source, f"dagster-user-code does not mount {source}"
    assert (user_code.get("depends_on") or {}).get("grafana-bootstrap", {}).get("condition") == (
        "service_completed_successfully"
    ), "the code location starts once the token exists"
    assert platform_env["GRAFANA_API_TOKEN"] == "${GRAFANA_API_TOKEN:-}", "an explicit token stays optional"


def test_publish_assets_write_no_files_into_the_image_in_docker(platform_env: dict[str, str]) -> None:
    """With GRAFANA_URL set and no GRAFANA_FILES_DIR, the dashboard and alert assets publish through
    the API and write nothing into the checkout copied into the image."""
    assert "GRAFANA_FILES_DIR" not in platform_env
    assert files_root(GrafanaResource(url=platform_env["GRAFANA_URL"])) is None
    assert files_root(GrafanaResource()) is not None, "generate-only runs (no GRAFANA_URL) still write the files"


def test_workspace_points_at_the_user_code_server(services: dict[str, Any]) -> None:
    locations = load_yaml(WORKSPACE).get("load_from") or []
    servers = [entry["grpc_server"] for entry in locations if "grpc_server" in entry]
    assert len(servers) == 1, f"{WORKSPACE.name}: expected exactly one grpc_server location, got {locations}"
    server = servers[0]
    user_code = services["dagster-user-code"]
    served_port = command_option(user_code, "-p", "--port")
    assert server.get("host") == "dagster-user-code", f"{WORKSPACE.name}: host {server.get('host')!r}"
    assert str(server.get("port")) == served_port, (
        f"{WORKSPACE.name}: port {server.get('port')} but dagster-user-code serves on {served_port}"
    )
    assert int(served_port or 0) in container_ports(user_code), f"dagster-user-code does not expose {served_port}"
    assert command_option(user_code, "-h", "--host") == "0.0.0.0", "dagster-user-code must listen on 0.0.0.0"
    assert server.get("location_name") == "platform_assets", f"{WORKSPACE.name}: location_name"
    assert command_option(user_code, "-m", "--module-name") == "platform_assets.definitions", (
        "dagster-user-code does not serve platform_assets.definitions"
    )


def test_dockerfile_installs_instance_and_workspace_where_services_look(
    services: dict[str, Any], platform_env: dict[str, str]
) -> None:
    text = DOCKERFILE.read_text()
    home = re.search(r"DAGSTER_HOME=(\S+)", text)
    assert home and home.group(1) == platform_env["DAGSTER_HOME"], (
        f"Dockerfile DAGSTER_HOME={home and home.group(1)}, x-platform-env DAGSTER_HOME={platform_env['DAGSTER_HOME']}"
    )
    copies = {
        src: dest.replace("${DAGSTER_HOME}", home.group(1))
        for src, dest in re.findall(r"^COPY\s+(?:--\S+\s+)*(\S+)\s+(\S+)\s*$", text, re.MULTILINE)
    }
    dagster_yaml = str(PurePosixPath(platform_env["DAGSTER_HOME"]) / "dagster.yaml")
    assert copies.get("docker/dagster.yaml") == dagster_yaml, (
        f"Dockerfile does not copy docker/dagster.yaml to {dagster_yaml}"
    )
    for name in ("dagster-webserver", "dagster-daemon"):
        workspace = command_option(services[name], "-w", "--workspace")
        assert copies.get("docker/workspace.docker.yaml") == workspace, (
            f"{name} loads {workspace}, where the Dockerfile does not copy docker/workspace.docker.yaml"
        )
    port = command_option(services["dagster-webserver"], "-p", "--port")
    assert int(port or 0) in container_ports(services["dagster-webserver"]), f"webserver port {port} is not published"


def test_dagster_instance_uses_postgres_from_the_platform_env(
    services: dict[str, Any], platform_env: dict[str, str]
) -> None:
    instance = load_yaml(DAGSTER_YAML)
    db = ((instance.get("storage") or {}).get("postgres") or {}).get("postgres_db")
    assert db, "docker/dagster.yaml: storage.postgres.postgres_db is not configured"
    env_names = sorted(set(re.findall(r"^\s*env:\s*(\w+)", DAGSTER_YAML.read_text(), re.MULTILINE)))
    unset = [name for name in env_names if name not in platform_env]
    assert not unset, f"docker/dagster.yaml reads {unset}, which x-platform-env does not set"
    host, port = platform_env[db["hostname"]["env"]], int(db.get("port", 5432))
    assert host in services and port in container_ports(services[host]), (
        f"docker/dagster.yaml: instance storage {host}:{port} is not a compose service listening there"
    )
    assert (instance.get("run_coordinator") or {}).get("class") == "QueuedRunCoordinator", (
        "docker/dagster.yaml: run_coordinator is not QueuedRunCoordinator"
    )
    assert (instance.get("run_retries") or {}).get("enabled") is True, "docker/dagster.yaml: run_retries disabled"
    assert (instance.get("telemetry") or {}).get("enabled") is False, "docker/dagster.yaml: telemetry enabled"


def test_host_ports_are_bound_to_loopback(services: dict[str, Any]) -> None:
    exposed = [
        f"{name}: {entry}"
        for name, service in services.items()
        for entry in service.get("ports") or []
        if not str(entry.get("host_ip") if isinstance(entry, dict) else entry).startswith("127.0.0.1")
    ]
    assert not exposed, "host ports must be bound to 127.0.0.1:\n" + "\n".join(exposed)


def test_profiled_services_start_only_with_their_profile(services: dict[str, Any]) -> None:
    for name, profile in PROFILED_SERVICES.items():
        assert services[name].get("profiles") == [profile], f"{name}: profiles {services[name].get('profiles')}"
    unexpected = sorted(n for n, s in services.items() if s.get("profiles") and n not in PROFILED_SERVICES)
    assert not unexpected, f"services behind a profile that the docs do not name: {unexpected}"


# The collector -------------------------------------------------------------------------------


def test_collector_runs_the_platform_collector_on_the_otlp_ports(services: dict[str, Any]) -> None:
    collector = services["collector"]
    assert collector.get("image") == services["dagster-user-code"].get("image"), "collector: the Dagster image"
    command = collector.get("command") or []
    assert command[:1] == ["platform-collector"], f"collector: command {command}"
    assert command_option(collector, "--host") == "0.0.0.0", "collector must listen on every interface of its container"
    http_port, grpc_port = (
        int(command_option(collector, "--port") or 0),
        int(command_option(collector, "--grpc-port") or 0),
    )
    assert (grpc_port, http_port) == (4317, 4318), "the OTLP default ports (docs/ingest.md)"
    assert set(published(collector)) == {(4317, 4317), (4318, 4318)}, f"collector publishes {published(collector)}"
    health = " ".join(map(str, (collector.get("healthcheck") or {}).get("test") or []))
    assert f":{http_port}/health" in health, f"collector healthcheck does not call /health on {http_port}: {health}"
    assert (collector.get("depends_on") or {}).get("kafka", {}).get("condition") == "service_healthy"


def test_collector_gets_every_setting_it_requires(services: dict[str, Any], platform_env: dict[str, str]) -> None:
    env = environment(services["collector"])
    required = [s.var for s in CollectorConfig.SETTINGS if s.required]
    missing = [var for var in required if not env.get(var)]
    assert not missing, f"collector lacks {missing} (platform-collector fails at start without them)"
    assert env["PLATFORM_ENV"] == "docker", "collector: PLATFORM_ENV=docker (no embedded stack in the container)"
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == platform_env["KAFKA_BOOTSTRAP_SERVERS"]
    assert env["USER_HASH_KEY"] == platform_env["USER_HASH_KEY"], "collector and dbt must hash users with one key"
    assert env["COLLECTOR_HMAC_KEYS"].startswith("${COLLECTOR_HMAC_KEYS:?"), "signing keys come from docker/.env"


def test_env_example_hmac_keys_have_the_collector_format() -> None:
    keys = parse_hmac_keys(env_example_names()["COLLECTOR_HMAC_KEYS"])  # raises naming the problem
    assert keys and all(b"change-me" in secret for secret in keys.values()), "the template's secret says change-me"


# Kafka: the platform creates the topics --------------------------------------------------------


def test_kafka_topic_settings_match_the_embedded_stack(services: dict[str, Any], platform_env: dict[str, str]) -> None:
    env = environment(services["kafka"])
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false", (
        "kafka must not auto-create topics: the kafka/topics asset creates them with the plan's settings"
    )
    assert env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == EMBEDDED_KAFKA["auto.create.topics.enable"]
    assert int(env.get("KAFKA_NUM_PARTITIONS", "1")) == EMBEDDED_KAFKA["num.partitions"]
    assert env.get("KAFKA_DEFAULT_REPLICATION_FACTOR") == platform_env["INGEST_REPLICATION_FACTOR"]
    assert int(env.get("KAFKA_LOG_RETENTION_HOURS", "168")) == topics.DEFAULT_RETENTION_HOURS


# The optional OpenTelemetry Collector front (profile otelcol) ----------------------------------


@pytest.fixture(scope="module")
def otelcol_config() -> dict[str, Any]:
    return load_yaml(OTELCOL_CONFIG)


def test_otelcol_service_mounts_its_config_on_other_ports(services: dict[str, Any]) -> None:
    otelcol = services["otelcol"]
    assert str(otelcol["image"]).startswith("otel/opentelemetry-collector-contrib:"), "the contrib build has kafka"
    target = next((t for t, src in mount_targets(otelcol).items() if src == "./otelcol/config.yaml"), None)
    assert target and f"--config={target}" in (otelcol.get("command") or []), (
        "otelcol does not load ./otelcol/config.yaml"
    )
    hosts = {host for host, _ in published(otelcol)}
    ours = {host for host, _ in published(services["collector"])}
    assert hosts and not hosts & ours, f"otelcol host ports {hosts} collide with the collector's {ours}"
    assert (otelcol.get("depends_on") or {}).get("kafka", {}).get("condition") == "service_healthy"


def test_otelcol_config_receives_otlp_and_writes_our_topics_as_otlp_json(
    services: dict[str, Any], platform_env: dict[str, str], otelcol_config: dict[str, Any]
) -> None:
    protocols = otelcol_config["receivers"]["otlp"]["protocols"]
    listening = {int(p["endpoint"].rpartition(":")[2]) for p in protocols.values()}
    assert listening == {container for _, container in published(services["otelcol"])}, (
        f"otelcol listens on {listening}, publishes {published(services['otelcol'])}"
    )
    kafka = otelcol_config["exporters"]["kafka"]
    assert kafka["brokers"] == platform_env["KAFKA_BOOTSTRAP_SERVERS"].split(",")
    assert "topic" not in kafka and "encoding" not in kafka, "per-signal settings only (top-level ones are deprecated)"
    topic_names = {t.name for t in topics.TOPICS}
    for signal, spec in SIGNALS.items():
        assert kafka[signal]["topic"] == spec.topic, f"otelcol {signal} -> {kafka[signal]['topic']}, want {spec.topic}"
        assert spec.topic in topic_names, f"{spec.topic} is not in the topic plan"
        assert kafka[signal]["encoding"] == ACCEPTED_OTLP_ENCODING, (
            f"otelcol {signal}: encoding {kafka[signal]['encoding']}; the Kafka tables read {ACCEPTED_OTLP_ENCODING}"
        )
    assert f"`{ACCEPTED_OTLP_ENCODING}` only" in (REPO_ROOT / "docs/ingest.md").read_text(), "docs/ingest.md changed"
    pipelines = otelcol_config["service"]["pipelines"]
    assert set(pipelines) == set(SIGNALS)
    for name, pipeline in pipelines.items():
        assert pipeline["receivers"] == ["otlp"] and pipeline["exporters"] == ["kafka"], name
        assert pipeline["processors"][-1] == "batch", f"{name}: batch is the last processor"
        for processor in pipeline["processors"]:
            assert processor in otelcol_config["processors"], f"{name}: processor {processor} is not defined"


def test_otelcol_deletes_what_our_collector_deletes_or_hashes(otelcol_config: dict[str, Any]) -> None:
    processors = otelcol_config["processors"]
    attributes = processors["attributes/pii"]["actions"]
    resource = processors["resource/pii"]["attributes"]
    for actions in (attributes, resource):
        assert {a["action"] for a in actions} == {"delete"}, "an unkeyed hash would not protect user ids"
        assert {a["key"] for a in actions} >= DEFAULT_DELETE | DEFAULT_HASH
    for name, pipeline in otelcol_config["service"]["pipelines"].items():
        assert {"attributes/pii", "resource/pii"} <= set(pipeline["processors"]), f"{name} skips the PII processors"


# Dagster: runs in containers of their own, the manifest built into the image -------------------


@pytest.fixture(scope="module")
def instance() -> dict[str, Any]:
    return load_yaml(DAGSTER_YAML)


def test_dagster_launches_runs_with_the_docker_run_launcher(
    compose: dict[str, Any], services: dict[str, Any], platform_env: dict[str, str], instance: dict[str, Any]
) -> None:
    launcher = instance.get("run_launcher") or {}
    assert (launcher.get("module"), launcher.get("class")) == ("dagster_docker", "DockerRunLauncher")
    config = launcher.get("config") or {}
    assert config.get("image") == services["dagster-user-code"]["image"], "runs use the code location's image"
    assert environment(services["dagster-user-code"]).get("DAGSTER_CURRENT_IMAGE") == config["image"]
    network = ((compose.get("networks") or {}).get("default") or {}).get("name")
    assert network and config.get("network") == network, f"runs join {config.get('network')}, compose is {network}"
    assert set(config.get("env_vars") or []) == set(platform_env), (
        "run_launcher.env_vars must name exactly x-platform-env's variables: "
        f"missing {sorted(set(platform_env) - set(config.get('env_vars') or []))}, "
        f"extra {sorted(set(config.get('env_vars') or []) - set(platform_env))}"
    )
    token_dir = str(PurePosixPath(platform_env["GRAFANA_API_TOKEN_FILE"]).parent)
    volume = compose["volumes"][mount_targets(services["dagster-user-code"])[token_dir]]["name"]
    run_volumes = (config.get("container_kwargs") or {}).get("volumes") or []
    assert f"{volume}:{token_dir}:ro" in run_volumes, f"runs do not mount the token volume {volume} at {token_dir}"
    for name in ("dagster-daemon", "dagster-webserver"):
        assert mount_targets(services[name]).get(DOCKER_SOCKET) == DOCKER_SOCKET, f"{name} lacks the Docker socket"
        assert services[name].get("group_add"), f"{name}: no group_add for the socket's group"


def test_dagster_docker_is_pinned_for_the_image_only(instance: dict[str, Any]) -> None:
    lock = dict(
        line.split("==", 1) for line in LOCK.read_text().splitlines() if "==" in line and not line.startswith("#")
    )
    assert "dagster-docker" not in lock, "dagster-docker belongs to the image's requirements, not the lock"
    pins = dict(
        line.split("#", 1)[0].strip().split("==", 1)
        for line in DOCKER_REQUIREMENTS.read_text().splitlines()
        if "==" in line.split("#", 1)[0]
    )
    assert pins.get("dagster-docker") == lock["dagster-postgres"], (
        f"dagster-docker {pins.get('dagster-docker')} must match the dagster libraries' {lock['dagster-postgres']}"
    )
    assert not set(pins) & set(lock), f"pinned twice: {sorted(set(pins) & set(lock))}"
    install = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("RUN pip install")]
    assert install and "-r docker/requirements.docker.txt" in install[0] and "-c requirements.lock" in install[0]


def test_dbt_manifest_is_built_into_the_image() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    parse = [
        i
        for i, line in enumerate(lines)
        if line.startswith("RUN") and ("ensure_manifest" in line or "dbt parse" in line)
    ]
    assert parse, "the Dockerfile does not build the dbt manifest (ensure_manifest / dbt parse)"
    last_copy = max(i for i, line in enumerate(lines) if line.startswith("COPY"))
    install = next(i for i, line in enumerate(lines) if line.startswith("RUN pip install"))
    user = max(i for i, line in enumerate(lines) if line.startswith("USER"))
    assert parse[-1] > max(last_copy, install, user), (
        "dbt parse must run after the last COPY and pip install, as the runtime user (it owns dbt/target)"
    )
    project_dir = re.search(r"PLATFORM_PROJECT_DIR=(\S+)", DOCKERFILE.read_text())
    workdir = next(line.split()[1] for line in lines if line.startswith("WORKDIR"))
    assert project_dir and project_dir.group(1) == workdir, "the project files are read from the image's copy"
    ignored = {line.strip() for line in DOCKERIGNORE.read_text().splitlines()}
    assert "dbt/target" in ignored, "a local (maybe stale) manifest must not enter the image"
