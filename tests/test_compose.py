"""docker-compose.yml and docker/Dockerfile, checked without a Docker engine.

The file is read as YAML and held to what the containers need at run time: a consistent
single-node KRaft broker, host ports on loopback only, the start-up order, and shian command
lines that the real CLI parser accepts, pointing at the broker's internal listener and at a
config that the image (the repository copied to /app) contains. Delivery: notify mails Mailpit
(a pinned image) with a config that loads, keeps its outbox on a volume, and describes the same
county as examples/county.yaml.
"""
from __future__ import annotations

import base64
import fnmatch
import re
import shlex
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from shian.notifiers.settings import parse as parse_notifiers
from shian.rules.config import load
from shian.cli import parser as _parser

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
APP = "/app"  # where docker/Dockerfile puts the repository
KAFKA = "kafka"  # the broker's service name
MAILPIT = "mailpit"  # the mail catcher's service name
NOTIFY = "notify"  # the delivery service
MAILPIT_SMTP_PORT = 1025  # Mailpit's SMTP port inside the network (its default)
COUNTY = REPO / "examples" / "county.yaml"
COUNTY_COMPOSE = REPO / "examples" / "county-compose.yaml"


# --------------------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict) and isinstance(data.get("services"), dict), "no services: mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def env_of(service: dict[str, Any]) -> dict[str, Any]:
    """``environment`` as a mapping, whether written as a mapping or as ``KEY=VALUE`` items."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def kafka_env(services: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {k: str(v) for k, v in env_of(services[KAFKA]).items()}


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` as ``{NAME: (host, port)}`` (an empty host stays empty)."""
    out: dict[str, tuple[str, int]] = {}
    for item in filter(None, (s.strip() for s in value.split(","))):
        m = re.fullmatch(r"([A-Za-z0-9_]+)://(\[[^\]]*\]|[^:]*):(\d+)", item)
        assert m, f"not NAME://HOST:PORT: {item!r}"
        assert m.group(1) not in out, f"listener {m.group(1)} given twice"
        out[m.group(1)] = (m.group(2), int(m.group(3)))
    return out


def protocol_map(value: str) -> dict[str, str]:
    return dict(item.strip().split(":", 1) for item in value.split(",") if item.strip())


def names(value: str) -> list[str]:
    return [s.strip() for s in value.split(",") if s.strip()]


def voters(value: str) -> list[tuple[int, str, int]]:
    out = []
    for item in names(value):
        m = re.fullmatch(r"(\d+)@([^:]+):(\d+)", item)
        assert m, f"not ID@HOST:PORT: {item!r}"
        out.append((int(m.group(1)), m.group(2), int(m.group(3))))
    return out


def internal_bootstrap(services: dict[str, dict[str, Any]]) -> str:
    """HOST:PORT the inter-broker listener advertises: what other containers must use."""
    env = kafka_env(services)
    host, port = listeners(env["KAFKA_ADVERTISED_LISTENERS"])[env["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    return f"{host}:{port}"


def published(service: dict[str, Any]) -> list[dict[str, Any]]:
    """``ports`` entries in long form: ``host_ip``, ``published``, ``target``."""
    out = []
    for p in service.get("ports") or []:
        if isinstance(p, dict):
            out.append({"host_ip": p.get("host_ip"), "published": str(p.get("published", "")),
                        "target": int(str(p["target"]).split("/")[0])})
            continue
        text = str(p).split("/")[0]
        m = re.fullmatch(r"(?:(\[[^\]]+\]|[^:]+):)?(?:([\d-]*):)?([\d-]+)", text)
        assert m, f"unreadable port entry {p!r}"
        host_ip, host_port, target = m.groups()
        if host_port is None and host_ip is not None and host_ip.isdigit():
            # "HOST_PORT:CONTAINER_PORT" (no address): the regex read the host port as an address
            host_ip, host_port = None, host_ip
        out.append({"host_ip": host_ip, "published": host_port or "", "target": int(target)})
    return out


def shian_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services built from docker/Dockerfile (the ones that run ``shian``)."""
    out = {}
    for name, svc in services.items():
        build = svc.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        dockerfile = (REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).resolve()
        if dockerfile == DOCKERFILE.resolve():
            out[name] = svc
    return out


def argv(command: Any) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def parse(name: str, command: Any) -> Any:
    """The command as the real ``shian`` parser reads it (a leading ``shian`` stripped)."""
    args = argv(command)
    assert args and args[0] == "shian", f"{name}: command does not start with shian: {args}"
    try:
        return _parser().parse_args(args[1:])
    except SystemExit as e:  # argparse reports errors by exiting
        pytest.fail(f"{name}: shian rejects {shlex.join(args)} (exit {e.code})")


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """``volumes`` as ``{container path: source}`` (short or long form; "" for an anonymous one)."""
    out = {}
    for v in service.get("volumes") or []:
        if isinstance(v, dict):
            out[v["target"]] = str(v.get("source") or "")
            continue
        parts = str(v).split(":")
        out[parts[1] if len(parts) > 1 else parts[0]] = parts[0] if len(parts) > 1 else ""
    return out


def notify_config_file(services: dict[str, dict[str, Any]]) -> Path:
    """The notify service's ``--config``, mapped from the image (/app) into the repository."""
    return REPO / parse(NOTIFY, services[NOTIFY]["command"]).config[len(APP) + 1:]


def notify_settings(services: dict[str, dict[str, Any]]) -> Any:
    """The notify service's delivery settings, loaded as notify loads them at start."""
    return parse_notifiers(load(str(notify_config_file(services))), env={})


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


# --------------------------------------------------------------------------- services, images

def test_compose_defines_kafka_topics_and_worker(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "topics", "worker"} <= set(services)


def test_kafka_is_the_official_apache_image_3_9(services: dict[str, dict[str, Any]]) -> None:
    assert re.fullmatch(r"apache/kafka:3\.9\.\d+", services[KAFKA]["image"]), services[KAFKA]["image"]
    assert "build" not in services[KAFKA]


def test_topics_and_worker_build_from_docker_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    built = shian_services(services)
    assert {"topics", "worker"} <= set(built), "topics and worker must build docker/Dockerfile"
    for name, svc in built.items():
        build = svc["build"] if isinstance(svc["build"], dict) else {"context": svc["build"]}
        # the context is the repository root, so COPY . /app copies the repository
        assert (REPO / build.get("context", ".")).resolve() == REPO, f"{name}: build context is not the repo root"


# --------------------------------------------------------------------------- kafka (KRaft)

def test_kafka_environment_values_are_strings_or_numbers(services: dict[str, dict[str, Any]]) -> None:
    # An unquoted `false` or `no` is a YAML boolean; Compose rejects or rewrites those.
    for key, value in env_of(services[KAFKA]).items():
        assert isinstance(value, (str, int)) and not isinstance(value, bool), f"{key}: {value!r}"


def test_kafka_runs_single_node_kraft_as_broker_and_controller(services: dict[str, dict[str, Any]]) -> None:
    env = kafka_env(services)
    assert set(names(env["KAFKA_PROCESS_ROLES"])) == {"broker", "controller"}
    assert not any(k.startswith("KAFKA_ZOOKEEPER") for k in env), "KRaft needs no ZooKeeper"
    # the image's start script refuses KRaft mode without CLUSTER_ID; it must be a 16-byte base64url id
    cluster_id = env["CLUSTER_ID"]
    raw = base64.urlsafe_b64decode(cluster_id + "==")
    assert len(raw) == 16 and base64.urlsafe_b64encode(raw).decode().rstrip("=") == cluster_id


def test_kafka_node_id_is_the_only_quorum_voter_and_reachable_on_the_controller_listener(
        services: dict[str, dict[str, Any]]) -> None:
    env = kafka_env(services)
    node_id = int(env["KAFKA_NODE_ID"])
    quorum = voters(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
    assert [v[0] for v in quorum] == [node_id]
    _, host, port = quorum[0]
    assert host in {KAFKA, services[KAFKA].get("hostname"), "localhost", "127.0.0.1"}, host
    ctl = names(env["KAFKA_CONTROLLER_LISTENER_NAMES"])
    bound = listeners(env["KAFKA_LISTENERS"])
    assert ctl and all(n in bound for n in ctl), "controller listener not in KAFKA_LISTENERS"
    assert port in {bound[n][1] for n in ctl}, "quorum voter port is not a controller listener port"


def test_kafka_listener_names_are_declared_in_the_protocol_map(services: dict[str, dict[str, Any]]) -> None:
    env = kafka_env(services)
    protocols = protocol_map(env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"])
    used = (set(listeners(env["KAFKA_LISTENERS"])) | set(listeners(env["KAFKA_ADVERTISED_LISTENERS"]))
            | set(names(env["KAFKA_CONTROLLER_LISTENER_NAMES"])) | {env["KAFKA_INTER_BROKER_LISTENER_NAME"]})
    assert used <= set(protocols), f"undeclared listener names: {used - set(protocols)}"
    assert set(protocols.values()) <= {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}


def test_kafka_advertises_each_broker_listener_it_binds_and_not_the_controller(
        services: dict[str, dict[str, Any]]) -> None:
    env = kafka_env(services)
    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    ctl = set(names(env["KAFKA_CONTROLLER_LISTENER_NAMES"]))
    assert set(advertised) == set(bound) - ctl
    # inside the compose network nothing remaps ports: the internal listener is dialled where it binds
    inter = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert advertised[inter][1] == bound[inter][1]


def test_kafka_internal_listener_is_advertised_as_kafka_9092(services: dict[str, dict[str, Any]]) -> None:
    env = kafka_env(services)
    inter = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
    assert inter in listeners(env["KAFKA_LISTENERS"])
    assert internal_bootstrap(services) == "kafka:9092"
    assert listeners(env["KAFKA_LISTENERS"])[inter][1] == 9092


def test_kafka_single_replica_internal_topics_and_no_rebalance_delay(services: dict[str, dict[str, Any]]) -> None:
    env = kafka_env(services)
    for key in ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        assert env.get(key) == "1", f"{key} must be 1 on a single broker (got {env.get(key)!r})"
    assert env.get("KAFKA_DEFAULT_REPLICATION_FACTOR", "1") == "1"
    assert env.get("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS") == "0"


def test_kafka_auto_create_topics_is_disabled(services: dict[str, dict[str, Any]]) -> None:
    # topics come from `shian topics`, with their partition counts; never from auto-create
    assert kafka_env(services).get("KAFKA_AUTO_CREATE_TOPICS_ENABLE") == "false"


def test_kafka_healthcheck_asks_the_broker_on_its_internal_port(services: dict[str, dict[str, Any]]) -> None:
    check = services[KAFKA].get("healthcheck")
    assert check and not check.get("disable"), "kafka needs a healthcheck (topics waits for service_healthy)"
    test = check["test"]
    words = test if isinstance(test, list) else ["CMD-SHELL", test]
    assert words[0] in {"CMD", "CMD-SHELL"}
    text = " ".join(words[1:])
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in text or "/opt/kafka/bin/kafka-topics.sh" in text
    port = internal_bootstrap(services).rsplit(":", 1)[1]
    assert re.search(rf"--bootstrap-server\s+(localhost|127\.0\.0\.1|kafka):{port}\b", text), text


def test_kafka_host_listener_matches_its_published_port(services: dict[str, dict[str, Any]]) -> None:
    env = kafka_env(services)
    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    for p in published(services[KAFKA]):
        # every published container port is a broker listener ...
        name = next((n for n, (_, port) in bound.items() if port == p["target"]), None)
        assert name and name in advertised, f"published port {p['target']} is no advertised listener"
        if name == env["KAFKA_INTER_BROKER_LISTENER_NAME"]:
            continue
        # ... and a host-facing one advertises the address host clients dial
        assert advertised[name] == (p["host_ip"], int(p["published"])), (name, advertised[name], p)


# --------------------------------------------------------------------------- all services

def test_host_ports_are_bound_to_127_0_0_1_only(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        for p in published(svc):
            assert p["host_ip"] == "127.0.0.1", f"{name}: port {p} is not bound to 127.0.0.1"
            assert p["published"], f"{name}: port {p} has no fixed host port"


def test_topics_waits_for_a_healthy_kafka_and_runs_once(services: dict[str, dict[str, Any]]) -> None:
    topics = services["topics"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    # unquoted `no` would be the YAML boolean false
    assert topics.get("restart") == "no"


def test_worker_starts_after_topics_completed_successfully(services: dict[str, dict[str, Any]]) -> None:
    assert services["worker"]["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_worker_runs_two_replicas(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert worker["deploy"]["replicas"] == 2
    # a fixed container name or host port would stop the second replica from starting
    assert "container_name" not in worker
    assert not worker.get("ports")


def test_worker_data_dir_is_a_tmpfs_or_volume_mount(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    args = parse("worker", worker["command"])
    tmpfs = worker.get("tmpfs") or []
    mounts = [tmpfs] if isinstance(tmpfs, str) else list(tmpfs)
    targets = {m.split(":")[0] for m in mounts}
    for v in worker.get("volumes") or []:
        if isinstance(v, dict):
            targets.add(v["target"])
        else:
            parts = str(v).split(":")
            targets.add(parts[1] if len(parts) > 1 else parts[0])
    assert args.data_dir in targets, f"--data-dir {args.data_dir} is not mounted (mounts: {targets})"


# --------------------------------------------------------------------------- shian command lines

def test_every_shian_command_is_accepted_by_the_cli_parser(services: dict[str, dict[str, Any]]) -> None:
    built = shian_services(services)
    assert built
    for name, svc in built.items():
        assert "command" in svc, f"{name}: no command (the image's CMD is only --help)"
        assert "entrypoint" not in svc, f"{name}: an entrypoint would run before the leading shian"
        parse(name, svc["command"])


def test_shian_commands_use_the_kafka_internal_listener(services: dict[str, dict[str, Any]]) -> None:
    want = f"kafka://{internal_bootstrap(services)}"
    for name, svc in shian_services(services).items():
        args = parse(name, svc["command"])
        if hasattr(args, "broker"):
            assert args.broker == want, f"{name}: --broker {args.broker}, want {want}"
            depends = svc.get("depends_on") or {}
            assert depends, f"{name} talks to kafka but depends on nothing"


def test_shian_config_paths_exist_in_the_image(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in shian_services(services).items():
        args = parse(name, svc["command"])
        path = getattr(args, "config", None)
        assert path, f"{name}: no --config"
        assert path.startswith(f"{APP}/"), f"{name}: --config {path} is outside {APP}/ (the copied repo)"
        local = REPO / path[len(APP) + 1:]
        assert local.is_file(), f"{name}: --config {path} -> {local} does not exist in the repo"


def test_topics_command_creates_topics_with_four_partitions(services: dict[str, dict[str, Any]]) -> None:
    args = parse("topics", services["topics"]["command"])
    assert args.command == "topics" and args.partitions == 4


def test_worker_command_runs_the_worker_with_data_dir(services: dict[str, dict[str, Any]]) -> None:
    args = parse("worker", services["worker"]["command"])
    assert args.command == "worker" and args.data_dir == "/data"


def test_parse_helper_rejects_a_bad_command() -> None:
    # the command tests above are only as good as this: a wrong flag must fail them
    with pytest.raises(pytest.fail.Exception):
        parse("bad", "shian worker --config /app/examples/county.yaml --brokers kafka://kafka:9092")
    assert parse("ok", "shian topics --config x.yaml --broker kafka://kafka:9092").partitions == 4


# --------------------------------------------------------------------------- Dockerfile

def test_dockerfile_exists() -> None:
    assert DOCKERFILE.is_file()


def test_dockerfile_is_python_3_11_slim_with_workdir_app() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert froms and froms[0].split()[0] == "python:3.11-slim"
    assert ("WORKDIR", APP) in instructions


def test_dockerfile_copies_the_repo_and_pip_installs_it() -> None:
    instructions = dockerfile_instructions()
    copies = [rest.split() for word, rest in instructions if word == "COPY"]
    assert any(c[-2:] in ([".", APP], [".", f"{APP}/"], [".", "."]) for c in copies), copies
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    assert re.search(r"\bpip install\b[^&;]*\s\.(\s|$)", runs), runs
    # COPY comes before the pip install that needs the sources
    order = [w for w, _ in instructions]
    assert order.index("COPY") < next(i for i, (w, r) in enumerate(instructions) if w == "RUN" and "pip install" in r)


def test_dockerfile_has_no_entrypoint_since_commands_start_with_shian() -> None:
    assert "ENTRYPOINT" not in [w for w, _ in dockerfile_instructions()]


def test_dockerignore_keeps_what_the_build_and_the_config_need() -> None:
    ignore = DOCKERFILE.with_name(DOCKERFILE.name + ".dockerignore")
    if not ignore.is_file():
        pytest.skip("no docker/Dockerfile.dockerignore")
    patterns = [ln.strip() for ln in ignore.read_text(encoding="utf-8").splitlines()
                if ln.strip() and not ln.startswith("#")]
    needed = ["pyproject.toml", "README.md", "rules/__init__.py", "cli/__init__.py", "streams/service.py",
              "notifiers/__init__.py", "notifiers/templates", "examples/county.yaml",
              "examples/county-compose.yaml"]
    for path in needed:
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        hit = [p for p in patterns if not p.startswith("!")
               and any(fnmatch.fnmatchcase(pre, p.lstrip("/")) for pre in prefixes)]
        assert not hit, f"{path} is excluded from the build context by {hit}"


# --------------------------------------------------------------------------- delivery: mailpit, notify

def test_compose_defines_mailpit_and_notify(services: dict[str, dict[str, Any]]) -> None:
    assert {MAILPIT, NOTIFY} <= set(services)
    assert NOTIFY in shian_services(services), "notify must build docker/Dockerfile like the other shian services"


def test_mailpit_is_the_official_image_pinned_to_a_release(services: dict[str, dict[str, Any]]) -> None:
    image = services[MAILPIT]["image"]
    # a moving tag (latest, v1) would change what `docker compose up` runs from one day to the next
    assert re.fullmatch(r"(docker\.io/)?axllent/mailpit:v1\.\d+\.\d+", image), image
    assert "build" not in services[MAILPIT]


def test_mailpit_publishes_only_its_web_ui_on_loopback(services: dict[str, dict[str, Any]]) -> None:
    ports = published(services[MAILPIT])
    # the SMTP port stays inside the compose network: notify reaches it as mailpit:1025
    assert [p["target"] for p in ports] == [8025], ports
    assert ports[0]["host_ip"] == "127.0.0.1" and ports[0]["published"] == "8025", ports


def test_notify_starts_after_topics_and_mailpit(services: dict[str, dict[str, Any]]) -> None:
    depends = services[NOTIFY]["depends_on"]
    assert depends["topics"]["condition"] == "service_completed_successfully"
    assert depends[MAILPIT]["condition"] in {"service_started", "service_healthy"}


def test_notify_runs_shian_notify_once(services: dict[str, dict[str, Any]]) -> None:
    notify = services[NOTIFY]
    args = parse(NOTIFY, notify["command"])
    assert args.command == "notify"
    assert args.config == f"{APP}/examples/county-compose.yaml"
    # one dispatcher per outbox file: a second replica would share (or lose) the outbox
    assert (notify.get("deploy") or {}).get("replicas", 1) == 1
    assert notify.get("restart") == "unless-stopped"


def test_notify_config_loads_and_mails_the_mailpit_service(services: dict[str, dict[str, Any]]) -> None:
    settings = notify_settings(services)  # raises ConfigError on any problem, as notify would at start
    smtp = settings.section("email")
    assert smtp is not None, "notify's config has no notifiers.smtp"
    reachable = {MAILPIT, services[MAILPIT].get("hostname"), services[MAILPIT].get("container_name")}
    assert smtp.host in reachable - {None}, f"smtp.host {smtp.host!r} is not the mailpit service"
    assert smtp.port == MAILPIT_SMTP_PORT
    assert smtp.security == "none", "Mailpit offers no TLS unless given a certificate"
    assert smtp.username is None and smtp.password_env is None, "Mailpit accepts mail without login"
    assert smtp.sender == "西平县食安办 <shianban@xiping.example>"
    # every department gets the e-mail
    config = settings.config
    assert all(settings.channels_of(d) == ("email",) for d in config.departments), \
        {d: settings.channels_of(d) for d in config.departments}


def test_notify_outbox_is_on_a_named_volume(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    settings = notify_settings(services)
    raw = load(str(notify_config_file(services))).notifiers["outbox"]
    # a relative path would resolve against /app/examples, inside the container's own layer
    assert PurePosixPath(raw).is_absolute(), f"notifiers.outbox {raw!r} is not an absolute container path"
    outbox = PurePosixPath(settings.outbox.as_posix())
    mounts = volume_mounts(services[NOTIFY])
    holding = [target for target in mounts if PurePosixPath(target) in outbox.parents]
    assert holding, f"outbox {outbox} is on no volume of notify (volumes: {mounts})"
    source = mounts[holding[0]]
    # a named volume, declared at the top level: it outlives `docker compose down` (without -v)
    assert source in (compose.get("volumes") or {}), f"{holding[0]} is mounted from {source!r}, not a named volume"
    tmpfs = services[NOTIFY].get("tmpfs") or []
    assert not any(PurePosixPath(str(m).split(":")[0]) in (outbox, *outbox.parents) for m in
                   ([tmpfs] if isinstance(tmpfs, str) else tmpfs)), "the outbox must not be on a tmpfs"


def test_notify_outbox_directory_is_made_in_the_image_for_its_user(services: dict[str, dict[str, Any]]) -> None:
    # Docker creates a missing mount point owned by root, and a new named volume takes the owner
    # of the image's directory: the image must make the directory and give it to its USER.
    mounts = volume_mounts(services[NOTIFY])
    outbox = PurePosixPath(notify_settings(services).outbox.as_posix())
    target = next(t for t in mounts if PurePosixPath(t) in outbox.parents)
    instructions = dockerfile_instructions()
    users = [rest for word, rest in instructions if word == "USER"]
    assert users, "the image has no USER"
    user = users[-1].split(":")[0]
    if user in {"root", "0"}:
        return
    runs = " ".join(rest for word, rest in instructions if word == "RUN")
    path = rf"\s{re.escape(target)}/?(?=\s|$)"
    made = re.search(rf"\bmkdir\b[^&;|]*{path}", runs) and re.search(
        rf"\bchown\b[^&;|]*\b{re.escape(user)}\b[^&;|]*{path}", runs)
    installed = re.search(rf"\binstall\b[^&;|]*\s-d\b[^&;|]*-o\s*{re.escape(user)}\b[^&;|]*{path}", runs)
    assert made or installed, (
        f"docker/Dockerfile must create {target} (the outbox volume's mount point) owned by {user}, "
        f"e.g. RUN ... && mkdir -p {target} && chown {user}:{user} {target}")


# --------------------------------------------------------------------------- examples/county-compose.yaml

def _raw(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def test_county_compose_is_county_yaml_plus_notifiers() -> None:
    # the two files must not drift: everything but the notifiers and service sections is the same YAML
    plain, compose_cfg = _raw(COUNTY), _raw(COUNTY_COMPOSE)
    assert compose_cfg.get("notifiers"), "county-compose.yaml has no notifiers section"
    for section in ("notifiers", "service"):
        plain.pop(section, None)
        compose_cfg.pop(section, None)
    assert set(compose_cfg) == set(plain), set(compose_cfg) ^ set(plain)
    for key in plain:
        assert compose_cfg[key] == plain[key], f"{key} differs between county.yaml and county-compose.yaml"


def test_county_compose_describes_the_same_county_once_loaded() -> None:
    plain, compose_cfg = load(str(COUNTY)), load(str(COUNTY_COMPOSE))
    assert compose_cfg.county == plain.county
    assert compose_cfg.departments == plain.departments
    assert compose_cfg.townships == plain.townships
    assert compose_cfg.rules == plain.rules
    assert compose_cfg.tz == plain.tz
    assert (compose_cfg.max_jump_days, compose_cfg.dedup_days) == (plain.max_jump_days, plain.dedup_days)



# --------------------------------------------------------------------------- the office service

def test_office_runs_shian_run_on_kafka_after_the_topics(services: dict[str, dict[str, Any]]) -> None:
    office = services["office"]
    args = _parser().parse_args(office["command"][1:])
    assert args.command == "run" and args.broker == f"kafka://{KAFKA}:9092" and not args.backfill
    assert office["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_office_dashboard_is_published_on_loopback_at_its_listen_port(services: dict[str, dict[str, Any]]) -> None:
    from shian.office.settings import parse as service_settings

    office = services["office"]
    config = load(str(COUNTY_COMPOSE))
    settings = service_settings(config, env={k: f"{k}-0123456789" for k in env_of(office)})
    assert office["ports"] == [f"127.0.0.1:{settings.port}:{settings.port}"]


def test_office_tokens_come_from_the_environment_and_the_config_needs_them(services: dict[str, dict[str, Any]]) -> None:
    from shian.office.settings import parse as service_settings
    from shian.rules.config import ConfigError

    env = env_of(services["office"])
    assert env and all(str(v).startswith("${") and ":?" in str(v) for v in env.values()), \
        "tokens must come from the host's environment, required, never written in the file"
    config = load(str(COUNTY_COMPOSE))
    with pytest.raises(ConfigError):
        service_settings(config, env={})
    settings = service_settings(config, env={k: f"{k}-0123456789" for k in env})
    assert not settings.open_access, "listening beyond loopback needs tokens"


def test_office_data_is_on_a_named_volume_under_the_image_made_directory(compose: dict[str, Any],
                                                                          services: dict[str, dict[str, Any]]) -> None:
    from shian.office.settings import parse as service_settings

    mounts = dict(v.split(":", 1) for v in services["office"]["volumes"])
    assert set(mounts) <= set(compose["volumes"])
    config = load(str(COUNTY_COMPOSE))
    settings = service_settings(config, env={k: f"{k}-0123456789" for k in env_of(services["office"])})
    assert any(str(settings.data_dir).startswith(target) for target in mounts.values())
