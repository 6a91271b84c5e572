"""A real Label Studio for the round-trip test: installed once into its own cached environment (never into the
workflow's lock), started on 127.0.0.1, driven through its HTTP API with session logins, stopped by its PID."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

# Label Studio's whole closure, hashed (tests/label-studio.in, written by `make locks`): an unpinned install
# once took sentry-sdk 3, with which Label Studio 1.23.2 does not start.
LOCK = Path(__file__).resolve().parent / "label-studio.lock"
CACHE = Path(os.environ.get("IMAGECODING_TEST_CACHE", Path.home() / ".cache" / "imagecoding-tests"))


def venv_path(lock: Path = LOCK) -> Path:
    """Where the venv of this lock lives: named by the lock's content, so an edited lock builds a new venv
    instead of reusing one installed from an older lock."""
    return CACHE / f"label-studio-{hashlib.sha256(lock.read_bytes()).hexdigest()[:16]}"


def environment(lock: Path = LOCK) -> Path:
    """The label-studio executable of a venv holding exactly the lock, made on first use (minutes, about 1 GB)
    and reused after."""
    venv = venv_path(lock)
    executable = venv / "bin" / "label-studio"
    complete = venv / "installed-from.lock"  # written last: a venv without it is an interrupted install
    if not complete.exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--require-hashes", "-r", str(lock)], check=True, timeout=1800)
        shutil.copyfile(lock, complete)
    return executable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LabelStudio:
    def __init__(self, data_dir: Path, document_root: Path, username: str, password: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.username, self.password = username, password
        env = dict(os.environ, LABEL_STUDIO_BASE_DATA_DIR=str(data_dir), LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED="true",
                   LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(document_root), LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="false")
        self.log = open(data_dir / "label-studio.log", "w")
        self.process = subprocess.Popen(
            [str(environment()), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(self.port),
             "--username", username, "--password", password],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait(self, timeout: float = 240) -> None:
        import requests

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"label-studio exited with {self.process.returncode}; see {self.log.name}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(1)
        raise TimeoutError(f"label-studio did not answer /health within {timeout} s; see {self.log.name}")

    def session(self, email: str, password: str, signup: bool = False):
        """A logged-in requests session; its CSRF token goes with every write."""
        import requests

        session = requests.Session()
        page = "signup" if signup else "login"
        session.get(f"{self.url}/user/{page}/", timeout=30)
        token = session.cookies.get("csrftoken")
        response = session.post(f"{self.url}/user/{page}/", data={"email": email, "password": password,
                                "csrfmiddlewaretoken": token}, headers={"Referer": f"{self.url}/user/{page}/"}, timeout=60)
        response.raise_for_status()
        session.headers.update({"X-CSRFToken": session.cookies.get("csrftoken"), "Referer": self.url})
        if not session.get(f"{self.url}/api/current-user/whoami", timeout=30).ok:
            raise RuntimeError(f"could not log in as {email} ({page}); see {self.log.name}")
        return session

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.log.close()
