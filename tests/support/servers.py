"""Real servers on loopback for the tests: a file server, PostgreSQL and MLflow."""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest


class FileServer:
    """A real HTTP server on 127.0.0.1 that serves given bytes and can fail on demand."""

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.fail_next = 0  # answer this many requests with 503 first
        self.trickle = 0.0  # when > 0: send the body one byte per this many seconds
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests.append(self.path)
                if server.fail_next > 0:
                    server.fail_next -= 1
                    self.send_error(503)
                    return
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not server.trickle:
                    self.wfile.write(body)
                    return
                try:
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(server.trickle)
                except OSError:  # the client gave up
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path | None:
    """Debian's PostgreSQL server programs (`initdb`, `pg_ctl`), or None."""
    found = shutil.which("initdb")
    candidates = [Path(found)] if found else sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].resolve().parent if candidates else None


needs_postgres = pytest.mark.skipif(
    postgres_bin() is None,
    reason="PostgreSQL's server is not installed (scripts/setup.sh test installs Debian's)")


class Postgres:
    """A throwaway PostgreSQL cluster on loopback (`initdb` and `pg_ctl` in a temp dir of its
    own), run as the `postgres` user when the tests run as root (initdb refuses root)."""

    def __init__(self):
        self.port = free_port()
        self.uri = f"postgresql://postgres@127.0.0.1:{self.port}/mlflow"

    def _run(self, program: str, *args: str) -> None:
        as_user = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        subprocess.run([*as_user, str(postgres_bin() / program), *args], check=True,
                       capture_output=True, cwd=self.root)

    def __enter__(self) -> Postgres:
        import tempfile

        self.root = Path(tempfile.mkdtemp(prefix="latentlab-pg-"))  # pytest's are root-only
        if os.getuid() == 0:
            shutil.chown(self.root, "postgres")
        data = str(self.root / "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", "postgres")
        self._run("pg_ctl", "-D", data, "-l", str(self.root / "log"), "-w", "start", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.root}")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mlflow")
        return self

    def __exit__(self, *exc) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


class MlflowServer:
    """A real `mlflow server` on loopback with its own SQLite store and artifact folder."""

    def __init__(self, root: Path, port: int | None = None, backend_store: str | None = None):
        self.root, self.port = root, port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.backend_store = backend_store or f"sqlite:///{root / 'mlflow.db'}"
        self.proc = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", "1",
                "--backend-store-uri", self.backend_store,
                "--artifacts-destination", str(self.root / "artifacts")]

    @staticmethod
    def environment() -> dict:
        """Without MLflow's job runners (seven huey processes for its GenAI jobs, which nothing
        here uses): idle, they cost the session ~50 CPU-seconds a server."""
        return {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}

    def start(self) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.command(), env=self.environment(),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        if not self.wait_healthy(lambda: self.proc.poll() is None):
            self.stop()
            raise RuntimeError("mlflow server did not start")
        return self

    def wait_healthy(self, alive=lambda: True) -> bool:
        """Wait until the server answers its health check; False if it died first."""
        import requests

        while alive():
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return True
            except requests.RequestException:
                time.sleep(0.5)
        return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def client(self):
        import mlflow

        return mlflow.MlflowClient(self.url)

