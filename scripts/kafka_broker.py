#!/usr/bin/env python3
"""A real single-node Apache Kafka broker (KRaft, no ZooKeeper, no Docker) for development and tests.

The broker is Kafka's own jars from Maven Central, resolved once by ``mvn`` (scripts/kafka/pom.xml)
into ``$SHIAN_KAFKA_CACHE/<version>/lib`` (default ``~/.cache/shian-kafka/<version>/lib``) and run
with ``java -cp``; everything listens on 127.0.0.1 only. Standard library only, so it works before
the project's virtualenv exists.

As a module (tests)::

    with Broker() as broker:          # free ports, temporary data dir, removed on stop
        use(broker.bootstrap)         # "127.0.0.1:PORT"

As a script (a broker that outlives the command; data kept in .kafka/ of the repo)::

    python scripts/kafka_broker.py up [--port 9092] [--data DIR]
    python scripts/kafka_broker.py status
    python scripts/kafka_broker.py down
"""
from __future__ import annotations

import argparse
import atexit
import base64
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

KAFKA_VERSION = os.environ.get("SHIAN_KAFKA_VERSION", "3.9.1")
HOST = "127.0.0.1"
HERE = Path(__file__).resolve().parent
POM = HERE / "kafka" / "pom.xml"
LOG4J = HERE / "kafka" / "log4j.properties"
DEFAULT_DATA = HERE.parent / ".kafka"
# Two cores and little to do: a small heap, Kafka's usual G1 settings.
JVM_OPTS = ["-Xmx512m", "-Xms256m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true"]


def classpath(version: str = KAFKA_VERSION) -> str:
    """The broker's classpath; the first call resolves the jars with mvn (about 100 MB)."""
    root = Path(os.environ.get("SHIAN_KAFKA_CACHE") or Path.home() / ".cache" / "shian-kafka")
    lib = root / version / "lib"
    if not lib.is_dir():
        if shutil.which("mvn") is None:
            raise RuntimeError(f"Kafka jars are not cached in {lib} and mvn is not on PATH")
        # Resolve into a private folder and rename it: parallel first runs never see half a lib.
        part = lib.with_name(f"lib.part-{os.getpid()}")
        shutil.rmtree(part, ignore_errors=True)
        cmd = ["mvn", "-q", "-B", "-f", str(POM), f"-Dkafka.version={version}",
               "dependency:copy-dependencies", f"-DoutputDirectory={part}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not any(part.glob("kafka_2.13-*.jar")):
            shutil.rmtree(part, ignore_errors=True)
            raise RuntimeError(f"mvn could not resolve Kafka {version}:\n{done.stdout}{done.stderr}")
        try:
            part.rename(lib)
        except OSError:  # another process finished first
            shutil.rmtree(part, ignore_errors=True)
    return str(lib / "*")


def free_port() -> int:
    """A port free right now (the OS may hand it out again before the broker binds it)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def cluster_id() -> str:
    """A random Kafka Uuid: 16 bytes, URL-safe base64 without padding, not starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def live_brokers(bootstrap: str, timeout: float = 2.0) -> int:
    """Brokers listed by a Metadata (v4) request; fenced brokers are left out, so > 0 means
    the broker accepts topic creation, produce and fetch."""
    host, port = bootstrap.rsplit(":", 1)
    client = b"shian-probe"
    # header v1: api_key=3 (Metadata), version 4, correlation id, client id;
    # body: topics=[] (none), allow_auto_topic_creation=false
    req = struct.pack(">hhih", 3, 4, 1, len(client)) + client + struct.pack(">ib", 0, 0)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        head = _recv(s, 4)
        body = _recv(s, struct.unpack(">i", head)[0])
    # response: correlation id, throttle_time_ms, brokers array length, ...
    corr, _throttle, brokers = struct.unpack_from(">iii", body)
    return brokers if corr == 1 else 0


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _alive(pid: int) -> bool:
    """Whether pid is a running Kafka broker (not a recycled pid of something else)."""
    if Path("/proc/self").exists():
        try:
            return b"kafka.Kafka" in Path(f"/proc/{pid}/cmdline").read_bytes()  # empty for zombies
        except OSError:
            return False
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _die_with_parent():
    """Linux: a pre-exec hook so that the broker gets SIGTERM when the process that started it
    dies without running atexit (kill -9, SIGTERM). Looked up before the fork, called after it."""
    try:
        import ctypes
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class Broker:
    """One broker+controller process. ``detach=True`` (the CLI) lets it outlive Python;
    otherwise it is stopped at exit and its temporary data dir removed. Keyword arguments
    override server.properties: ``Broker(log_retention_ms=60000)`` sets ``log.retention.ms``."""

    def __init__(self, port: int = 0, controller_port: int = 0, data_dir: str | Path | None = None,
                 version: str = KAFKA_VERSION, detach: bool = False, start_timeout: float = 120.0,
                 **overrides: object) -> None:
        self.port, self.controller_port = port, controller_port
        self.version, self.detach, self.start_timeout = version, detach, start_timeout
        self.overrides = {k.replace("_", "."): v for k, v in overrides.items()}
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else None
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    def properties(self) -> dict[str, object]:
        """server.properties: one combined node, test-friendly (fast, small, no surprises)."""
        props: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": 1,
            "controller.quorum.bootstrap.servers": f"{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": self.data_dir / "kraft-combined-logs",
            # The project creates its topics with known partition counts.
            "auto.create.topics.enable": "false",
            "num.partitions": 1,
            "default.replication.factor": 1,
            "min.insync.replicas": 1,
            "offsets.topic.replication.factor": 1,
            "offsets.topic.num.partitions": 4,
            "transaction.state.log.replication.factor": 1,
            "transaction.state.log.min.isr": 1,
            "transaction.state.log.num.partitions": 4,
            # Fast tests: no rebalance delay, small segments and buffers, few threads.
            "group.initial.rebalance.delay.ms": 0,
            "log.segment.bytes": 16 * 1024 * 1024,
            "log.index.size.max.bytes": 1024 * 1024,
            "log.cleaner.dedupe.buffer.size": 16 * 1024 * 1024,
            "num.network.threads": 2,
            "num.io.threads": 4,
            "num.recovery.threads.per.data.dir": 1,
            "background.threads": 4,
        }
        props.update(self.overrides)
        return props

    def start(self) -> "Broker":
        cp = classpath(self.version)
        if self._own_dir:
            self.data_dir = Path(tempfile.mkdtemp(prefix="shian-kafka-"))
        if not self.detach:
            atexit.register(self.stop)
        try:
            self._launch(cp)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, cp: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port()
        while not self.controller_port or self.controller_port == self.port:
            # a port chosen by the caller is not bound yet: the OS may hand out the same one
            self.controller_port = free_port()
        conf = self.data_dir / "server.properties"
        conf.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        java = [shutil.which("java") or "java", *JVM_OPTS, f"-Dlog4j.configuration={LOG4J.as_uri()}",
                f"-Dkafka.logs.dir={self.data_dir}", "-cp", cp]
        if not (self.data_dir / "kraft-combined-logs" / "meta.properties").exists():
            # Kafka 3.9: a single-node dynamic quorum (KIP-853) goes with
            # controller.quorum.bootstrap.servers; the static controller.quorum.voters is formatted
            # without --standalone.
            fmt = subprocess.run([*java, "kafka.tools.StorageTool", "format", "--standalone",
                                  "-t", cluster_id(), "-c", str(conf)], capture_output=True, text=True)
            if fmt.returncode != 0:
                raise RuntimeError(f"kafka storage format failed:\n{fmt.stdout}{fmt.stderr}")
        with open(self.data_dir / "kafka.out", "ab") as out:
            self.proc = subprocess.Popen(
                [*java, "kafka.Kafka", str(conf)], stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, cwd=self.data_dir, start_new_session=True,
                preexec_fn=None if self.detach else _die_with_parent())
        (self.data_dir / "broker.pid").write_text(f"{self.proc.pid}\n")
        (self.data_dir / "bootstrap").write_text(self.bootstrap + "\n")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                problem = f"Kafka exited with code {self.proc.returncode}"
                break
            try:
                if live_brokers(self.bootstrap) > 0:
                    return
            except (OSError, struct.error):
                pass
            if time.monotonic() > deadline:
                problem = f"Kafka did not answer a metadata request within {self.start_timeout:.0f}s"
                break
            time.sleep(0.25)
        logs = (f"--- {p.name} ---\n{_tail(p)}" for p in (self.data_dir / "kafka.out", self.data_dir / "server.log"))
        raise RuntimeError(f"{problem} on {self.bootstrap} (data in {self.data_dir})\n" + "\n".join(logs))

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the process group (clean shutdown), SIGKILL after ``timeout`` seconds."""
        atexit.unregister(self.stop)
        if self.proc is not None:
            stop_group(self.proc.pid, timeout, wait=self.proc.wait)
            self.proc = None
        if self._own_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_group(pid: int, timeout: float, wait=None) -> None:
    """Stops a broker started in its own session (its pid is the group id)."""
    def gone(t: float) -> bool:
        if wait is not None:
            try:
                wait(timeout=t)
                return True
            except subprocess.TimeoutExpired:
                return False
        end = time.monotonic() + t
        while _alive(pid):
            if time.monotonic() > end:
                return False
            time.sleep(0.1)
        return True

    for sig, t in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        if gone(t):
            return


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="A single-node Kafka broker on 127.0.0.1 for development.")
    ap.add_argument("command", choices=["up", "down", "status"])
    ap.add_argument("--port", type=int, default=9092, help="PLAINTEXT port (default 9092)")
    ap.add_argument("--controller-port", type=int, default=0, help="CONTROLLER port (default: free)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="data dir (default .kafka/ in the repo)")
    args = ap.parse_args(argv)
    pidfile, bootfile = args.data / "broker.pid", args.data / "bootstrap"
    pid = int(pidfile.read_text()) if pidfile.exists() else None
    running = pid is not None and _alive(pid)
    where = bootfile.read_text().strip() if bootfile.exists() else "?"

    if args.command == "status":
        print(f"Kafka running at {where} (pid {pid})" if running else "Kafka not running")
        return 0 if running else 1
    if args.command == "down":
        if running:
            stop_group(pid, 30.0)
            print(f"Kafka at {where} stopped")
        else:
            print("Kafka not running")
        pidfile.unlink(missing_ok=True)
        return 0
    if running:
        print(f"Kafka already running at {where} (pid {pid})")
        return 0
    with socket.socket() as s:
        if s.connect_ex((HOST, args.port)) == 0:
            print(f"port {HOST}:{args.port} is already taken by another program", file=sys.stderr)
            return 1
    broker = Broker(port=args.port, controller_port=args.controller_port, data_dir=args.data, detach=True)
    try:
        broker.start()
    except RuntimeError as e:
        print(e, file=sys.stderr)
        return 1
    print(f"Kafka {broker.version} running at {broker.bootstrap} (pid {broker.proc.pid}, data {args.data})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
