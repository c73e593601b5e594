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

from platform_assets.registry import REQUIRED_ENV_VARS

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
COMPOSE_FILE = DOCKER_DIR / "docker-compose.yml"
ENV_EXAMPLE = DOCKER_DIR / ".env.example"
DOCKERFILE = DOCKER_DIR / "Dockerfile"
DAGSTER_YAML = DOCKER_DIR / "dagster.yaml"
WORKSPACE = DOCKER_DIR / "workspace.docker.yaml"
GRAFANA_DATASOURCE = DOCKER_DIR / "grafana/provisioning/datasources/clickhouse.yaml"
GRAFANA_DASHBOARDS = DOCKER_DIR / "grafana/provisioning/dashboards/platform.yaml"

PLATFORM_SERVICES = ("dagster-user-code", "dagster-webserver", "dagster-daemon")
EXPECTED_SERVICES = {
    "postgres",
    "dagster-postgres",
    "clickhouse",
    "kafka",
    "minio",
    "minio-init",
    "grafana",
    *PLATFORM_SERVICES,
}
# Read by the resources but not required at load time; the compose file still sets them.
OPTIONAL_PLATFORM_VARS = ("PLATFORM_ENV", "GRAFANA_URL", "GRAFANA_API_TOKEN", "DAGSTER_HOME")
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
            if source.startswith((".", "/")):
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


def test_grafana_provisions_the_clickhouse_datasource(services: dict[str, Any], platform_env: dict[str, str]) -> None:
    grafana = services["grafana"]
    env = environment(grafana)
    assert GRAFANA_PLUGIN in env.get("GF_INSTALL_PLUGINS", ""), f"grafana: GF_INSTALL_PLUGINS lacks {GRAFANA_PLUGIN}"
    assert mount_targets(grafana).get("/etc/grafana/provisioning") == "./grafana/provisioning", (
        "grafana: ./grafana/provisioning is not mounted at /etc/grafana/provisioning"
    )
    datasources = load_yaml(GRAFANA_DATASOURCE).get("datasources") or []
    clickhouse = [ds for ds in datasources if ds.get("type") == GRAFANA_PLUGIN]
    assert len(clickhouse) == 1, f"{GRAFANA_DATASOURCE.name}: expected one {GRAFANA_PLUGIN} datasource"
    json_data = clickhouse[0].get("jsonData") or {}
    host, port = json_data.get("host"), int(json_data.get("port", 0))
    assert host in services, f"{GRAFANA_DATASOURCE.name}: host {host!r} is not a compose service"
    assert port in container_ports(services[host]), f"{GRAFANA_DATASOURCE.name}: {host} does not listen on {port}"
    expected_port = platform_env[
        "CLICKHOUSE_TCP_PORT" if json_data.get("protocol") == "native" else "CLICKHOUSE_HTTP_PORT"
    ]
    assert port == int(expected_port), (
        f"{GRAFANA_DATASOURCE.name}: protocol {json_data.get('protocol')!r} on port {port}, "
        f"but ClickHouse serves it on {expected_port}"
    )
    # Grafana expands ${VAR} in provisioning files from its own container environment.
    unset = sorted({name for name, _ in references(clickhouse[0])} - env.keys())
    assert not unset, f"{GRAFANA_DATASOURCE.name} uses {unset}, which the grafana service does not set"


def test_grafana_dashboard_provider_reads_a_mounted_folder(services: dict[str, Any]) -> None:
    providers = load_yaml(GRAFANA_DASHBOARDS).get("providers") or []
    assert providers, f"{GRAFANA_DASHBOARDS.name} defines no dashboard provider"
    mounts = mount_targets(services["grafana"])
    for provider in providers:
        path = (provider.get("options") or {}).get("path")
        assert path in mounts, f"{GRAFANA_DASHBOARDS.name}: provider path {path!r} is not a grafana volume target"


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
