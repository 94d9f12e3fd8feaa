"""Helpers shared by the tests and the overhead benchmark: a real ``blindsight-server`` on
loopback with SQLite in a temporary directory, and synthetic sessions."""

from __future__ import annotations

import copy
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Optional

REPO = Path(__file__).resolve().parents[3]
EXAMPLE_SESSION = json.loads((REPO / "docs" / "session-example.json").read_text())
EXAMPLE_TRAINING = json.loads((REPO / "docs" / "training-example.json").read_text())
PASSPHRASE = "pytest passphrase, not a secret"


def server_binary() -> str:
    """The ``blindsight-server`` binary: ``$BLINDSIGHT_SERVER_BIN`` (the Rust test runner sets
    it to the one cargo built), else one on ``PATH``."""
    path = os.environ.get("BLINDSIGHT_SERVER_BIN") or shutil.which("blindsight-server")
    if not path or not Path(path).is_file():
        raise RuntimeError(
            "no blindsight-server binary: set BLINDSIGHT_SERVER_BIN, or run these tests through "
            "`cargo test --workspace --test pytest`, which builds it and sets it"
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``blindsight-server serve`` on a free loopback port, SQLite under ``data_dir``."""

    def __init__(self, data_dir: Path, min_cohort: int = 2) -> None:
        self.admin_token = secrets.token_hex(32)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "server.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLINDSIGHT_")}
        env["BLINDSIGHT_ADMIN_TOKEN"] = self.admin_token
        env.setdefault("RUST_LOG", "warn")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [
                server_binary(),
                "serve",
                "--listen",
                f"127.0.0.1:{self.port}",
                "--data-dir",
                str(data_dir / "data"),
                "--min-cohort",
                str(min_cohort),
                "--workers",
                "1",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.wait_ready()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"blindsight-server exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=2) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"blindsight-server was not ready within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def post_record(url: str, ingest_token: str, envelope: bytes) -> Dict[str, Any]:
    """Uploads an envelope with plain urllib (an app with its own HTTP stack)."""
    request = urllib.request.Request(
        url + "/v1/records",
        data=envelope,
        method="POST",
        headers={
            "authorization": f"Bearer {ingest_token}",
            "content-type": "application/octet-stream",
        },
    )
    with urllib.request.urlopen(request, timeout=120) as reply:
        return json.loads(reply.read())


def session(record_id: str, cohort: Optional[str] = None, i: int = 0) -> Dict[str, Any]:
    """A valid session, varied by ``i`` (moods, answers) so aggregates have something to
    show."""
    s = copy.deepcopy(EXAMPLE_SESSION)
    s["record_id"] = record_id
    s["cohort"] = cohort
    s["mood_before"] = i % 11
    s["mood_after"] = (i * 3 + 2) % 11
    s["phq9"] = [(i + k) % 4 for k in range(9)]
    s["gad7"] = [(i * 2 + k) % 4 for k in range(7)]
    s["cssrs"]["wish_dead"] = i % 3 == 0
    return s
