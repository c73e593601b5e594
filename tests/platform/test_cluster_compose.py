"""docker/cluster/: the ClickHouse cluster deployment, checked without a Docker engine (as
test_docker_compose.py checks docker/): 2 shards x 2 replicas of ClickHouse, 3 Keeper nodes,
3 Kafka brokers, and the platform services wired to them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKER_DIR = REPO_ROOT / "docker"
CLUSTER_DIR = DOCKER_DIR / "cluster"
COMPOSE_FILE = CLUSTER_DIR / "docker-compose.yml"
CLUSTER = "platform"

CLICKHOUSE_NODES = ("ch-s1-r1", "ch-s1-r2", "ch-s2-r1", "ch-s2-r2")
KEEPERS = ("keeper-1", "keeper-2", "keeper-3")
BROKERS = ("kafka-1", "kafka-2", "kafka-3")
PLATFORM_SERVICES = ("dagster-user-code", "dagster-webserver", "dagster-daemon")
EXPECTED_SERVICES = {
    *CLICKHOUSE_NODES,
    *KEEPERS,
    *BROKERS,
    "postgres",
    "dagster-postgres",
    "minio",
    "minio-init",
    "collector",
    *PLATFORM_SERVICES,
}
CONFIG_D = "/etc/clickhouse-server/config.d"
KEEPER_CONFIG = "/etc/clickhouse-keeper/keeper_config.xml"
INTERPOLATION = re.compile(r"\$(?:\$|\{(?P<braced>[A-Za-z_]\w*)(?P<modifier>[^}]*)\}|(?P<bare>[A-Za-z_]\w*))")


def load_yaml(path: Path) -> Any:
    assert path.is_file(), f"{path.relative_to(REPO_ROOT)} is missing"
    return yaml.safe_load(path.read_text())


def load_xml(path: Path) -> ET.Element:
    assert path.is_file(), f"{path.relative_to(REPO_ROOT)} is missing"
    return ET.parse(path).getroot()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def platform_env(compose: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in compose["x-platform-env"].items()}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host source of each volume entry."""
    out = {}
    for entry in service.get("volumes") or []:
        source, _, rest = str(entry).partition(":")
        out[rest.split(":", 1)[0]] = source
    return out


def mounted_xml(service: dict[str, Any], target: str) -> ET.Element:
    source = mounts(service).get(target)
    assert source, f"nothing is mounted at {target}"
    return load_xml((CLUSTER_DIR / source).resolve())


def strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in (*strings(k), *strings(v))]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def test_expected_services_exist(services: dict[str, Any]) -> None:
    missing = EXPECTED_SERVICES - services.keys()
    assert not missing, f"docker/cluster/docker-compose.yml lacks {sorted(missing)}"
    assert sorted(n for n in services if n.startswith("ch-")) == sorted(CLICKHOUSE_NODES)
    assert sorted(n for n in services if n.startswith("keeper-")) == sorted(KEEPERS)
    assert sorted(n for n in services if n.startswith("kafka-")) == sorted(BROKERS)


def test_images_are_pinned_like_the_main_compose(services: dict[str, Any]) -> None:
    main = load_yaml(DOCKER_DIR / "docker-compose.yml")["services"]
    for name, service in services.items():
        image = str(service.get("image", ""))
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag and tag != "latest", f"{name}: image {image!r} is not pinned"
    assert services["ch-s1-r1"]["image"] == main["clickhouse"]["image"]
    assert all(services[k]["image"] == main["clickhouse"]["image"] for k in KEEPERS), "keepers: the server's version"
    assert all(services[b]["image"] == main["kafka"]["image"] for b in BROKERS)
    for name in (*PLATFORM_SERVICES, "collector"):
        assert services[name]["image"] == main[name]["image"], f"{name}: not the platform image"
        assert services[name]["build"]["dockerfile"] == main[name]["build"]["dockerfile"]
        assert (CLUSTER_DIR / services[name]["build"]["context"]).resolve() == REPO_ROOT


def test_every_server_has_a_healthcheck(services: dict[str, Any]) -> None:
    one_shot = {n for n, s in services.items() if s.get("restart") == "no"}
    assert one_shot == {"minio-init"}
    missing = [n for n, s in services.items() if n not in one_shot and not (s.get("healthcheck") or {}).get("test")]
    assert not missing, f"services without a healthcheck: {missing}"


def test_mounted_files_exist_and_host_ports_are_loopback(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target, source in mounts(service).items():
            if source.startswith("."):
                assert (CLUSTER_DIR / source).resolve().exists(), f"{name}: {source} (for {target}) does not exist"
        for entry in service.get("ports") or []:
            assert str(entry).startswith("127.0.0.1:"), f"{name}: port {entry} is not bound to 127.0.0.1"


def macros(services: dict[str, Any], node: str) -> dict[str, str]:
    found = mounted_xml(services[node], f"{CONFIG_D}/node.xml").find("macros")
    assert found is not None, f"{node}: no <macros> in its node.xml"
    return {child.tag: (child.text or "") for child in found}


def test_each_clickhouse_node_has_its_own_shard_and_replica(services: dict[str, Any]) -> None:
    pairs = []
    for node in CLICKHOUSE_NODES:
        m = macros(services, node)
        assert m.get("cluster") == CLUSTER, f"{node}: macro cluster {m.get('cluster')!r}"
        assert m.get("replica") == node == services[node].get("hostname"), f"{node}: replica macro {m}"
        root = mounted_xml(services[node], f"{CONFIG_D}/node.xml")
        assert root.findtext("interserver_http_host") == node, f"{node}: interserver_http_host"
        pairs.append((m["shard"], m["replica"]))
    assert len(set(pairs)) == 4, f"shard/replica pairs repeat: {pairs}"
    shards = sorted({shard for shard, _ in pairs})
    assert len(shards) == 2 and all(sum(1 for s, _ in pairs if s == shard) == 2 for shard in shards), pairs


def test_remote_servers_lists_the_four_nodes_in_two_shards(services: dict[str, Any]) -> None:
    for node in CLICKHOUSE_NODES:
        root = mounted_xml(services[node], f"{CONFIG_D}/cluster.xml")
        cluster = root.find(f"remote_servers/{CLUSTER}")
        assert cluster is not None, f"{node}: no remote_servers/{CLUSTER}"
        shards = cluster.findall("shard")
        assert len(shards) == 2, f"{node}: {len(shards)} shards"
        layout = []
        for shard in shards:
            assert shard.findtext("internal_replication") == "true", "Replicated tables copy within a shard"
            hosts = [r.findtext("host") for r in shard.findall("replica")]
            assert all(r.findtext("port") == "9000" for r in shard.findall("replica"))
            assert len(hosts) == 2, f"{node}: a shard of {hosts}"
            assert len({macros(services, h)["shard"] for h in hosts if h}) == 1, f"a shard mixes shard macros: {hosts}"
            layout.append(hosts)
        assert sorted(h for hosts in layout for h in hosts) == sorted(CLICKHOUSE_NODES), layout
        assert mounts(services[node]).get(f"{CONFIG_D}/platform.xml") == "../clickhouse/config.d/platform.xml"
        assert mounts(services[node]).get("/etc/clickhouse-server/users.d/platform.xml") == (
            "../clickhouse/users.d/platform.xml"
        )


def test_every_node_uses_the_keeper_ensemble_of_three(services: dict[str, Any]) -> None:
    for node in CLICKHOUSE_NODES:
        root = mounted_xml(services[node], f"{CONFIG_D}/cluster.xml")
        ensemble = [(n.findtext("host"), n.findtext("port")) for n in root.findall("zookeeper/node")]
        assert ensemble == [(k, "9181") for k in KEEPERS], f"{node}: keeper nodes {ensemble}"
        depends = services[node].get("depends_on") or {}
        assert all(depends.get(k, {}).get("condition") == "service_healthy" for k in KEEPERS), node
    ids = []
    for keeper in KEEPERS:
        root = mounted_xml(services[keeper], KEEPER_CONFIG).find("keeper_server")
        assert root is not None, f"{keeper}: no keeper_server"
        assert root.findtext("tcp_port") == "9181"
        ids.append(root.findtext("server_id"))
        raft = [(s.findtext("id"), s.findtext("hostname")) for s in root.findall("raft_configuration/server")]
        assert raft == [(str(i), k) for i, k in enumerate(KEEPERS, start=1)], f"{keeper}: raft {raft}"
        port = root.findtext("http_control/port")
        health = " ".join(services[keeper]["healthcheck"]["test"])
        assert f"localhost:{port}/ready" in health, f"{keeper}: healthcheck {health} misses the readiness port {port}"
        assert services[keeper].get("hostname") == keeper
    assert ids == ["1", "2", "3"], f"keeper server ids {ids}"


def test_brokers_form_a_controller_quorum_of_three(services: dict[str, Any], platform_env: dict[str, str]) -> None:
    envs = {b: environment(services[b]) for b in BROKERS}
    node_ids = [envs[b]["KAFKA_NODE_ID"] for b in BROKERS]
    assert node_ids == ["1", "2", "3"]
    for broker, env in envs.items():
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert voters == [f"{i}@{b}:9093" for i, b in zip(node_ids, BROKERS, strict=True)], f"{broker}: {voters}"
        assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
        assert f"PLAINTEXT://{broker}:9092" in env["KAFKA_ADVERTISED_LISTENERS"], broker
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from the kafka/topics asset"
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3" == platform_env["INGEST_REPLICATION_FACTOR"]
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
    assert len({env["CLUSTER_ID"] for env in envs.values()}) == 1, "one CLUSTER_ID for the three brokers"


def test_platform_services_point_at_the_cluster(services: dict[str, Any], platform_env: dict[str, str]) -> None:
    assert platform_env["CLICKHOUSE_CLUSTER"] == CLUSTER
    assert platform_env["INGEST_REPLICATION_FACTOR"] == "3"
    assert platform_env["CLICKHOUSE_HOST"] in CLICKHOUSE_NODES
    assert platform_env["KAFKA_BOOTSTRAP_SERVERS"].split(",") == [f"{b}:9092" for b in BROKERS]
    assert environment(services["collector"])["KAFKA_BOOTSTRAP_SERVERS"] == platform_env["KAFKA_BOOTSTRAP_SERVERS"]
    # The runs get the daemon's values of docker/dagster.yaml's run_launcher.env_vars (the main
    # compose's x-platform-env): the cluster's environment has exactly those names.
    main_env = load_yaml(DOCKER_DIR / "docker-compose.yml")["x-platform-env"]
    launcher = load_yaml(DOCKER_DIR / "dagster.yaml")["run_launcher"]["config"]
    assert set(platform_env) == set(main_env) == set(launcher["env_vars"])
    for name in PLATFORM_SERVICES:
        env = environment(services[name])
        assert {k: env.get(k) for k in platform_env} == platform_env, f"{name} does not use *platform-env"
    for key in ("POSTGRES_HOST", "DAGSTER_PG_HOST", "S3_ENDPOINT_URL"):
        host = re.sub(r"^\w+://|:\d+$", "", platform_env[key])
        assert host in services, f"{key}={platform_env[key]}: no such service"
    network = load_yaml(COMPOSE_FILE)["networks"]["default"]["name"]
    assert network == launcher["network"], "runs join the cluster's network (docker/dagster.yaml)"


def test_variables_come_from_docker_env_and_secrets_are_required(compose: dict[str, Any]) -> None:
    documented = set()
    for line in (DOCKER_DIR / ".env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            documented.add(line.partition("=")[0].strip())
    refs = [
        (m["braced"] or m["bare"], m["modifier"] or "")
        for text in strings(compose)
        for m in INTERPOLATION.finditer(text)
        if m["braced"] or m["bare"]
    ]
    assert not sorted({n for n, _ in refs} - documented), "variables missing from docker/.env.example"
    weak = sorted({n for n, mod in refs if re.search("PASSWORD|SECRET", n) and not mod.startswith(":?")})
    assert not weak, f"secrets must use ${{VAR:?...}}: {weak}"
