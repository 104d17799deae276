"""Real processes for the scale-out tests: `nls serve` replicas and nginx, on loopback.

``Replica`` runs ``python -m nls_gateway serve`` (the command deploy/ runs) with real
engines on a loopback port; ``Nginx`` runs the Debian nginx binary in a temporary prefix
with ``deploy/nginx/nls-gateway.conf.template`` rendered exactly as the nginx Docker image
and ``envsubst`` would. Both are ended by pid, never by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NGINX_TEMPLATE = DEPLOY / "nginx" / "nls-gateway.conf.template"
TEMPLATE_VARIABLES = ("NLS_LISTEN", "NLS_REPLICA_1", "NLS_REPLICA_2")
"""The ``${…}`` names the template uses (and the compose file sets)."""

SECRET = "deploy-test-token-secret-0123456789"
AKID, AKSECRET = "deploy-akid", "deploy-aksecret"
APPKEY = "deploy-app"
REPLICA_ARGS = (
    "--token-secret", SECRET,
    "--access-key-id", AKID,
    "--access-key-secret", AKSECRET,
    "--appkey", f"{APPKEY}:zh",
    "--max-live-streams", "1",
    "--shutdown-grace", "10",
)  # fmt: skip
"""How the tests run each replica: deploy/'s credentials shape (not dev mode), one
shared token secret, and a budget of one live stream so two sessions fill the cluster."""

_CREDENTIAL_ENV = ("NLS_APP_KEY", "NLS_TOKEN", "ALIYUN_AK_ID", "ALIYUN_AK_SECRET")


def find_nginx() -> str | None:
    """The nginx binary (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` for the given names only, as ``envsubst '${NAME} …'`` does
    (nginx's own ``$host``, ``$http_upgrade`` … stay)."""
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body of one GET (HTTP errors are answers, not exceptions)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


class Replica:
    """One ``nls serve`` process on 127.0.0.1; ``start()`` then ``wait_ready()``."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = list(args)
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.stderr_tail: list[str] = []
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v1"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process (on the same port as before, after a kill)."""
        env = {k: v for k, v in os.environ.items() if k not in _CREDENTIAL_ENV}
        env["PYTHONPATH"] = str(ROOT / "src")
        env.pop("PYTHONASYNCIODEBUG", None)  # a production process, not a debug one
        self._ready = ready = threading.Event()  # this process's, not a killed one's
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nls_gateway", "serve", "--host", "127.0.0.1"]
            + ["--port", str(self.port), "--log-level", "WARNING", *self.args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        threading.Thread(target=self._read_stderr, args=(self.proc, ready), daemon=True).start()

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Wait for "ready on …" (engines loaded).

        Raises:
            RuntimeError: the process exited or did not get ready in time.
        """
        if not self._ready.wait(timeout) or not self.port or not self.alive():
            raise RuntimeError("replica not ready:\n" + "\n".join(self.stderr_tail))

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, like a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def terminate(self) -> None:
        """SIGTERM: the gateway drains (``--shutdown-grace``) and exits."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def metric(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The sum of the replica's ``/metrics`` samples ``name`` with these labels."""
        status, body = http_get(self.http_url + "/metrics")
        assert status == 200, status
        return sum(
            float(sample.value)
            for family in text_string_to_metric_families(body.decode())
            for sample in family.samples
            if sample.name == name
            and all(sample.labels.get(k) == v for k, v in (labels or {}).items())
        )

    def _read_stderr(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stderr is not None
        with proc.stderr:
            for line in proc.stderr:
                self.stderr_tail = (self.stderr_tail + [line.rstrip()])[-50:]
                match = re.search(r"ready on ws://127\.0\.0\.1:(\d+)/", line)
                if match:
                    self.port = int(match.group(1))
                    ready.set()
        ready.set()  # exited: wait_ready() stops waiting and reports why


class Nginx:
    """nginx in a temporary prefix, one worker (so ``least_conn`` counts exactly)."""

    def __init__(self, binary: str, workdir: Path, replicas: Sequence[Replica]) -> None:
        self.binary = binary
        self.dir = workdir
        self.port = free_port()
        site = render_template(
            NGINX_TEMPLATE.read_text(),
            {
                "NLS_LISTEN": f"127.0.0.1:{self.port}",
                "NLS_REPLICA_1": replicas[0].address,
                "NLS_REPLICA_2": replicas[1].address,
            },
        )
        assert "${" not in site, "the template uses a variable the test does not set"
        (workdir / "nls-gateway.conf").write_text(site)
        # The main context the Debian/Docker packages provide, cut to what a test needs.
        (workdir / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {workdir}/nginx.pid;\n"
            f"error_log {workdir}/error.log notice;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"    access_log {workdir}/access.log;\n"
            f"    client_body_temp_path {workdir}/client_body;\n"
            f"    proxy_temp_path {workdir}/proxy;\n"
            f"    fastcgi_temp_path {workdir}/fastcgi;\n"
            f"    uwsgi_temp_path {workdir}/uwsgi;\n"
            f"    scgi_temp_path {workdir}/scgi;\n"
            f"    include {workdir}/nls-gateway.conf;\n"
            "}\n"
        )
        command = [self.binary, "-p", str(workdir), "-e", f"{workdir}/error.log"]
        command += ["-c", f"{workdir}/nginx.conf"]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,  # -e: everything goes to error.log
            start_new_session=True,  # its workers share the master's process group
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("nginx did not start: " + self.error_log()) from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/v1"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        """SIGQUIT (graceful), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the group of the master we started
                self.proc.wait(5)


class Cluster:
    """Two replicas and the nginx in front of them."""

    def __init__(self, replicas: list[Replica], nginx: Nginx) -> None:
        self.replicas = replicas
        self.nginx = nginx

    def ensure_up(self) -> None:
        """Restart replicas a previous test killed or drained (same ports)."""
        down = [r for r in self.replicas if not r.alive()]
        for replica in down:
            replica.start()
        for replica in down:
            replica.wait_ready()

    def with_tasks(self) -> list[int]:
        """Live tasks per replica, from each one's /metrics."""
        return [int(r.metric("nls_active_tasks")) for r in self.replicas]
