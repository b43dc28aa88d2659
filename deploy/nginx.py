"""The OS's nginx on loopback, configured by deploy/nginx.conf (the file docker-compose.yml
mounts), for `make topology` and the tests that go through the proxy.

deploy/nginx.conf is the one template: `render` replaces its upstream servers with the local
replicas' ports (keeping the first server line's parameters), its `listen` with a loopback
port and its access log path, and changes nothing else, so retries, timeouts, headers and
body limits are the ones production runs. `Nginx` wraps the result in a main configuration of
its own (pid, temp directories and logs under a private directory; no system configuration,
no root needed) and runs nginx in the foreground as a child process.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

TEMPLATE = Path(__file__).resolve().with_name("nginx.conf")
# Where Debian and most distributions put the binary; /usr/sbin is not on every user's PATH.
SEARCH = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
INSTALL_HINT = "install nginx (Debian/Ubuntu: apt-get install nginx-light) or set VARCO_NGINX"

_UPSTREAM = re.compile(r"(upstream\s+varco\s*\{)(.*?)(\})", re.S)
_SERVER = re.compile(r"^([ \t]*)server[ \t]+\S+?((?:[ \t]+[^;\n]+)?);[ \t]*\n", re.M)
_LISTEN = re.compile(r"^([ \t]*)listen[ \t]+8080;", re.M)
_ACCESS_LOG = "/var/log/nginx/access.log"


class NginxUnavailable(RuntimeError):
    """No nginx binary here (the message says how to get one)."""


def find_nginx() -> str | None:
    """$VARCO_NGINX, nginx on PATH, or the usual sbin locations."""
    given = os.environ.get("VARCO_NGINX")
    if given:
        return given
    found = shutil.which("nginx")
    if found:
        return found
    return next((p for p in SEARCH if os.access(p, os.X_OK)), None)


def render(template: str, port: int, upstream_ports: list[int], access_log: Path) -> str:
    """deploy/nginx.conf for loopback: nginx on `port`, one upstream server per replica port."""
    if not upstream_ports:
        raise ValueError("at least one replica")
    block = _UPSTREAM.search(template)
    if block is None:
        raise ValueError(f"{TEMPLATE}: no `upstream varco {{...}}` block")
    servers = list(_SERVER.finditer(block.group(2)))
    if not servers:
        raise ValueError(f"{TEMPLATE}: the upstream block has no server line")
    indent, params = servers[0].group(1), servers[0].group(2)
    lines = "".join(f"{indent}server 127.0.0.1:{p}{params};\n" for p in upstream_ports)
    body = block.group(2)
    body = body[: servers[0].start()] + lines + _SERVER.sub("", body[servers[0].start() :])
    out = template[: block.start(2)] + body + template[block.end(2) :]
    out, listens = _LISTEN.subn(rf"\g<1>listen 127.0.0.1:{port};", out)
    if listens != 1:
        raise ValueError(f"{TEMPLATE}: expected one `listen 8080;`, found {listens}")
    if out.count(_ACCESS_LOG) != 1:
        raise ValueError(f"{TEMPLATE}: expected one access_log {_ACCESS_LOG}")
    return out.replace(_ACCESS_LOG, str(access_log))


def main_conf(site: str, run_dir: Path) -> str:
    """The main context around the site: everything nginx writes goes under `run_dir`."""
    # Started by root, nginx hands its workers to `nobody`, who could not enter a private
    # temporary directory; they stay the invoking user, as they are when it is not root.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    temp = "\n".join(
        f"    {kind}_temp_path {run_dir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"# Written by deploy/nginx.py for one run; edit deploy/nginx.conf instead.\n"
        f"{user}daemon off;\nworker_processes 1;\npid {run_dir / 'nginx.pid'};\n"
        f"error_log stderr notice;\n"
        f"worker_rlimit_nofile 16384;\nevents {{ worker_connections 8192; }}\n"
        f"http {{\n    default_type application/octet-stream;\n{temp}\n\n{site}\n}}\n"
    )


class Nginx:
    """nginx on 127.0.0.1:`port` in front of replicas on loopback `upstream_ports`."""

    def __init__(self, port: int, upstream_ports: list[int], access_log: Path) -> None:
        binary = find_nginx()
        if binary is None:
            raise NginxUnavailable(f"nginx not found: {INSTALL_HINT}")
        self.binary, self.port = binary, port
        self.access_log = access_log
        self.run_dir = Path(tempfile.mkdtemp(prefix="varco-nginx-"))
        site = render(TEMPLATE.read_text(), port, upstream_ports, access_log)
        self.conf = self.run_dir / "nginx.conf"
        self.conf.write_text(main_conf(site, self.run_dir))
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        # -p: relative paths and the prefix under run_dir; -e: the error log before the
        # configuration is read (a build's default may be an unwritable /var/log path).
        return [self.binary, "-p", str(self.run_dir), "-e", "stderr", "-c", str(self.conf)]

    def start(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        check = subprocess.run([*self.command(), "-t", "-q"], capture_output=True, text=True)
        if check.returncode:
            raise RuntimeError(f"nginx refused {self.conf}:\n{check.stderr}")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        return self.proc

    def wait_listening(self, timeout_s: float = 30) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start listening on {self.port}") from exc
                time.sleep(0.05)

    def cleanup(self) -> None:
        """Remove the private directory (after the process has exited)."""
        shutil.rmtree(self.run_dir, ignore_errors=True)
