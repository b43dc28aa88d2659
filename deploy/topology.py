"""docker-compose.yml's topology without Docker: Redis, the loader daemon, N enforcement
replicas and nginx in front of them, as separate processes on loopback.

    .venv/bin/python -m deploy.topology                 # or: make topology
    .venv/bin/python -m deploy.topology --replicas 3 --permits 1000000
    .venv/bin/python -m deploy.topology --port 9000 --replica-ports 9101,9102

nginx is the OS's (deploy/nginx.py), configured by the deploy/nginx.conf that compose mounts;
it listens on --port ($VARCO_PORT, else the configuration's [server] port, 8080), replica i on
the i-th of --replica-ports ($VARCO_REPLICA_PORTS, else that port + i: 8081, 8082, ...); the
admin API is on every replica. Each replica keeps the snapshots it downloads in
a directory of its own (VARCO_SNAPSHOT_DIR), so what it serves came through Redis, as on a
machine of its own. The permit database is the configured one (SQLite in the data directory
unless DATABASE_URL is set); it is filled with demo permits when empty. Redis is ours
(data/redis, append-only) unless REDIS_URL is set. Logs: data/topology/<process>.log.
Ctrl-C (or SIGTERM) stops everything.

Fault tests drive the same class: kill -9 any process and start it again.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from enforcement.config.load import ConfigError, load_config
from enforcement.replica.redis_server import EmbeddedRedis

from .nginx import INSTALL_HINT, Nginx, find_nginx

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "examples" / "demo.toml"


class Topology:
    """The processes of one deployment, each startable, killable and restartable."""

    def __init__(
        self,
        config: Path,
        data_dir: Path,
        replica_ports: list[int],
        proxy_port: int | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.config, self.data_dir = config.resolve(), data_dir.resolve()
        self.ports, self.proxy_port = replica_ports, proxy_port
        self.replicas = len(replica_ports)
        self.env = {
            **os.environ,
            **(extra_env or {}),
            "VARCO_DATA_DIR": str(self.data_dir),
            "PYTHONPATH": str(ROOT),
        }
        self.log_dir = self.data_dir / "topology"
        self.redis: EmbeddedRedis | None = None
        self.redis_max_memory = 0  # bytes; main() sets the configuration's [redis] max_memory
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.nginx: Nginx | None = None
        self._logs: dict[str, IO[bytes]] = {}

    # -- processes ---------------------------------------------------------------------------

    def _varco(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if name in self._logs:
            self._logs[name].close()
        log = self._logs[name] = (self.log_dir / f"{name}.log").open("ab")
        cmd = [sys.executable, "-m", "varco.cli", "--config", str(self.config), *args]
        self.procs[name] = subprocess.Popen(
            cmd, env={**self.env, **(env or {})}, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )

    def seed(self, permits: int) -> None:
        """Demo permits into an empty permit database (and a first local snapshot)."""
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "varco.cli",
                "--config",
                str(self.config),
                "demo",
                "--permits",
                str(permits),
                "--no-serve",
            ],
            env={**self.env, "REDIS_URL": "off"},
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        if out.returncode:
            raise RuntimeError(f"seeding the permit database failed:\n{out.stderr}")

    def start_redis(self) -> str:
        if os.environ.get("REDIS_URL"):
            self.env["REDIS_URL"] = os.environ["REDIS_URL"]
            return self.env["REDIS_URL"]
        if self.redis is None:
            self.redis = EmbeddedRedis(self.data_dir / "redis", self.redis_max_memory)
        self.redis.start()
        self.env["REDIS_URL"] = self.redis.url
        return self.redis.url

    def kill_redis(self) -> None:
        assert self.redis is not None, "Redis is not ours (REDIS_URL): not ours to kill"
        self.redis.kill()

    def start_loader(self, name: str = "loader", failpoint: str | None = None) -> int:
        """A `varco watch` process; its pid. The first holds the lease, another under another
        name stands by and takes over within the lease (`[loader] lease_ms`)."""
        self._varco(name, "watch", env={"VARCO_FAILPOINT": failpoint} if failpoint else None)
        return self.procs[name].pid

    def replica_port(self, i: int) -> int:
        """Replica i (from 1)."""
        return self.ports[i - 1]

    def start_replica(self, i: int) -> None:
        snapshots = self.data_dir / f"replica-{i}" / "snapshots"
        self._varco(
            f"replica-{i}",
            "serve",
            "--port",
            str(self.replica_port(i)),
            env={"VARCO_SNAPSHOT_DIR": str(snapshots)},
        )

    def start_proxy(self) -> None:
        """nginx (deploy/nginx.conf, as in docker-compose.yml) in front of every replica."""
        assert self.proxy_port is not None
        if self.nginx is None:
            self.nginx = Nginx(self.proxy_port, self.ports, self.log_dir / "nginx-access.log")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if "proxy" in self._logs:
            self._logs["proxy"].close()
        log = self._logs["proxy"] = (self.log_dir / "proxy.log").open("ab")
        self.procs["proxy"] = self.nginx.start(log)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        proc = self.procs[name]
        proc.send_signal(sig)
        return proc.wait(30)

    def stop(self) -> None:
        """SIGTERM every process (replicas and proxy first), then stop our Redis."""
        order = sorted(self.procs, key=lambda n: n == "loader")
        for name in order:
            if self.procs[name].poll() is None:
                self.procs[name].send_signal(signal.SIGTERM)
        for name in order:
            try:
                self.procs[name].wait(20)
            except subprocess.TimeoutExpired:
                self.procs[name].kill()
                self.procs[name].wait()
        if self.redis is not None:
            self.redis.stop()
        if self.nginx is not None:
            self.nginx.cleanup()
        for log in self._logs.values():
            log.close()

    # -- observing ---------------------------------------------------------------------------

    def readiness(self, i: int) -> tuple[int, dict[str, Any]] | None:
        url = f"http://127.0.0.1:{self.replica_port(i)}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())
        except (urllib.error.URLError, OSError):
            return None

    def wait_ready(self, i: int, timeout_s: float = 60, min_revision: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.readiness(i)
            if got is not None and got[0] == 200 and got[1]["index_revision"] >= min_revision:
                return got[1]
            proc = self.procs.get(f"replica-{i}")
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(
                    f"replica-{i} exited with {proc.returncode}; "
                    f"see {self.log_dir / f'replica-{i}.log'}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica-{i} not ready within {timeout_s:.0f} s: {got}")
            time.sleep(0.05)

    def start(self, permits: int) -> None:
        self.seed(permits)
        self.start_redis()
        self.start_loader()
        for i in range(1, self.replicas + 1):
            self.start_replica(i)
        for i in range(1, self.replicas + 1):
            self.wait_ready(i)
        if self.proxy_port is not None:
            self.start_proxy()
            self.wait_proxy()

    def wait_proxy(self, timeout_s: float = 30) -> None:
        assert self.nginx is not None
        try:
            self.nginx.wait_listening(timeout_s)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; see {self.log_dir}/proxy.log") from None


def _ports(text: str) -> list[int]:
    try:
        ports = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of ports: {text!r}") from None
    if not ports or not all(0 < p < 65536 for p in ports):
        raise argparse.ArgumentTypeError(f"ports are 1-65535, at least one: {text!r}")
    return ports


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m deploy.topology",
        description="Redis, the loader, replicas and a proxy on loopback",
    )
    p.add_argument(
        "--config", type=Path, default=Path(os.environ.get("VARCO_CONFIG", DEFAULT_CONFIG))
    )
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument(
        "--port",
        type=int,
        help="nginx's port (default: $VARCO_PORT, else the configuration's [server] port)",
    )
    p.add_argument(
        "--replica-ports",
        type=_ports,
        default=os.environ.get("VARCO_REPLICA_PORTS"),
        help="the replicas' ports, comma-separated, one replica each (overrides --replicas; "
        "default: $VARCO_REPLICA_PORTS, else the port + 1, + 2, ...)",
    )
    p.add_argument(
        "--permits",
        type=int,
        default=200_000,
        help="demo permits to generate if the database is empty",
    )
    args = p.parse_args(argv)
    try:
        settings, _ = load_config(args.config)  # honours VARCO_PORT
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    port = args.port or settings.server.port
    ports = args.replica_ports or [port + i for i in range(1, args.replicas + 1)]
    if port in ports or len(set(ports)) != len(ports):
        print(f"ports must differ: nginx {port}, replicas {ports}", file=sys.stderr)
        return 2
    if find_nginx() is None:
        print(f"make topology runs nginx in front of the replicas: {INSTALL_HINT}", file=sys.stderr)
        return 2
    topo = Topology(args.config, settings.storage.data_dir, ports, proxy_port=port)
    topo.redis_max_memory = settings.redis.max_memory
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        print(
            f"starting Redis, a loader, its standby and {len(ports)} replicas "
            f"(logs in {topo.log_dir})",
            flush=True,
        )
        topo.start(args.permits)
        topo.start_loader("loader-standby")  # takes over within [loader] lease_ms
        print(
            f"ready: nginx http://127.0.0.1:{port}, replicas on "
            f"{', '.join(map(str, ports))}; "
            "Ctrl-C stops everything",
            flush=True,
        )
        while not stopping:
            time.sleep(0.5)
            for name, proc in topo.procs.items():
                if proc.poll() is not None:
                    print(
                        f"{name} exited with {proc.returncode}; see {topo.log_dir}/{name}.log",
                        file=sys.stderr,
                    )
                    stopping = True
    finally:
        topo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
