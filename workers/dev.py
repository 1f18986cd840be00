"""`make run`: one supervising process for the laptop deployment.

It migrates and seeds the embedded SQLite database under instance/, starts the embedded Redis
(when REDIS_URL is unset), then gunicorn, one RQ worker with its scheduler, exactly one
`rq cron` and the mail IDLE worker. Ctrl-C or SIGTERM stops the children, then shuts Redis down; if a child dies, everything
stops. A lock on instance/run.lock keeps a second supervisor off the same instance/.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from helpdesk.embedded_redis import AlreadyRunning, EmbeddedRedis, die_with_parent  # noqa: E402
from helpdesk.runlock import RunLock  # noqa: E402

STOP_TIMEOUT = 10  # seconds a child gets to finish its current request or job
READY_TIMEOUT = 60


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived."""


class RunError(Exception):
    """A step or a child process failed; the message says which."""


def say(msg=""):
    print(f"[make run] {msg}" if msg else "", flush=True)


class Supervisor:
    """Owns the lock, the embedded Redis and the long-running children."""

    def __init__(self):
        from config import DevConfig

        self.config = DevConfig()  # the children run with HELPDESK_ENV=dev too
        self.instance = Path(self.config.INSTANCE_PATH).resolve()
        self.port = self.config.PORT
        self.lock = RunLock(self.instance)
        self.redis = None
        self.children = {}  # name -> Popen, in start order
        self.descendants = {}  # pid -> psutil.Process, every process seen below us
        self.stopping = False
        self.hurry = False

    # ------------------------------------------------------------ signals

    def _on_signal(self, signum, _frame):
        if self.stopping:
            self.hurry = True
            return
        self.stopping = True
        raise Interrupted(signal.Signals(signum).name)

    def _install_signals(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)

    # ------------------------------------------------------------ steps

    def child_env(self):
        env = dict(os.environ, HELPDESK_ENV="dev", HELPDESK_INSTANCE=str(self.instance), FLASK_APP="wsgi.py",
                   PYTHONUNBUFFERED="1", PORT=str(self.port))
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        if "MAIL_SERVER" not in os.environ:
            env.setdefault("MAIL_SUPPRESS_SEND", "1")  # no SMTP server on a laptop: jobs run, mail is not sent
        return env

    @property
    def redis_url(self):
        return self.redis.url if self.redis is not None else os.environ["REDIS_URL"]

    def start_redis(self):
        if os.environ.get("REDIS_URL"):
            say(f"Using Redis at {os.environ['REDIS_URL']} (REDIS_URL).")
            return
        self.redis = EmbeddedRedis(self.instance, persist=True, tied=True)
        try:
            self.redis.start()
        except AlreadyRunning:
            # We hold the lock, so no supervisor owns it: an orphan of a run that was killed.
            say(f"An orphan Redis server answers on {self.redis.socket}; shutting it down.")
            self.redis.shutdown_other()
            self.redis.start()
        say(f"Embedded Redis started (pid {self.redis.pid}) on {self.redis.url}, append-only file in {self.instance}.")

    def check_port(self):
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does: TIME_WAIT is fine
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError as exc:
                raise RunError(f"Port {self.port} on 127.0.0.1 is in use ({exc.strerror}). "
                                  f"Stop what uses it or choose another: PORT=5001 make run") from None

    def flask(self, *args):
        cmd = [sys.executable, "-m", "flask", *args]
        say("$ flask " + " ".join(args))
        proc = subprocess.run(cmd, cwd=ROOT, env=self.child_env(), stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            raise RunError(f"`flask {' '.join(args)}` failed with exit code {proc.returncode} (see above).")

    def spawn(self, name, cmd):
        # Own process group: a Ctrl-C in the terminal reaches only this supervisor, which stops the
        # children in order. Linux also sends them SIGTERM should the supervisor be killed outright.
        self.children[name] = subprocess.Popen(cmd, cwd=ROOT, env=self.child_env(), stdin=subprocess.DEVNULL,
                                               process_group=0, preexec_fn=die_with_parent)

    def start_children(self):
        url = self.redis_url
        self.spawn("web (gunicorn)", [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}",
                                      "--workers", "2", "--threads", "4", "--graceful-timeout", "5", "--no-control-socket",
                                      "wsgi:app"])
        self.spawn("rq worker", [sys.executable, "-m", "rq.cli", "worker", "mail", "sla", "default",
                                 "--with-scheduler", "-w", "workers.worker.HelpdeskWorker", "--url", url])
        self.spawn("rq cron", [sys.executable, "-m", "rq.cli", "cron", "workers/cron.py", "--url", url])
        self.spawn("mail IDLE", [sys.executable, "-m", "workers.mail_idle"])

    def check_children(self):
        for name, proc in self.children.items():
            if proc.poll() is not None:
                raise RunError(f"The {name} process (pid {proc.pid}) exited unexpectedly with code "
                                  f"{proc.returncode}; stopping everything. See its output above.")
        self.snapshot()

    def snapshot(self):
        """Remember every live process below us (but Redis), to kill any orphan left at the end."""
        self.descendants = {pid: p for pid, p in self.descendants.items() if _alive(p)}
        try:
            for p in psutil.Process().children(recursive=True):
                if self.redis is None or p.pid != self.redis.pid:
                    self.descendants.setdefault(p.pid, p)
        except psutil.Error:
            pass

    def wait_until_ready(self):
        url = f"http://127.0.0.1:{self.port}/login"
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            self.check_children()
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RunError(f"The web app did not answer on {url} within {READY_TIMEOUT} s.")

    def banner(self):
        from helpdesk.cli import DEMO_AGENTS, DEMO_PASSWORD

        say()
        say(f"Helpdesk is running at http://127.0.0.1:{self.port}/")
        say(f"Demo logins (password for all: {DEMO_PASSWORD}; two-factor login is not enforced for them):")
        for email, name, roles, _queue in DEMO_AGENTS:
            say(f"    {email:24} {name:20} {', '.join(roles)}")
        say(f"Jobs: one RQ worker (queues mail, sla, default, with scheduler) and one rq cron, on {self.redis_url}")
        say("Mail: the IDLE worker fetches configured mailboxes (Admin → Email → Mailboxes, or IMAP_HOST) as mail arrives")
        if self.child_env().get("MAIL_SUPPRESS_SEND") == "1" and "MAIL_SERVER" not in os.environ:
            say("Outgoing mail is not sent (MAIL_SUPPRESS_SEND=1); set MAIL_SERVER to send it.")
        say(f"Data: {self.instance}. Press Ctrl-C to stop.")
        say()

    # ------------------------------------------------------------ shutdown

    def stop_children(self):
        self.snapshot()
        running = [(n, p) for n, p in reversed(list(self.children.items())) if p.poll() is None]
        for name, proc in running:
            say(f"Stopping {name} (pid {proc.pid})...")
            try:
                proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for name, proc in running:
            while proc.poll() is None and time.monotonic() < deadline and not self.hurry:
                time.sleep(0.1)
            if proc.poll() is None:
                say(f"{name} did not stop in time; killing it.")
                _kill_group(proc.pid)
                proc.wait()
        # Work horses and gunicorn workers live in their own process groups: kill any left behind.
        leftovers = [p for p in self.descendants.values() if _alive(p)]
        for p in leftovers:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(leftovers, timeout=5)
        self.children.clear()

    def shutdown(self):
        self.stopping = True
        try:
            self.stop_children()
        finally:
            if self.redis is not None and self.redis.proc is not None:
                say("Shutting down the embedded Redis (flushing its append-only file)...")
                self.redis.stop()
            self.lock.release()

    # ------------------------------------------------------------ main

    def run(self):
        if not self.lock.acquire():
            say(f"Another `make run` (pid {self.lock.holder()}) is already running on {self.instance}. "
                "Stop it first (Ctrl-C in its terminal), or set HELPDESK_INSTANCE to another directory.")
            return 1
        self._install_signals()
        code = 0
        try:
            self.check_port()
            self.start_redis()
            self.flask("db", "upgrade")
            self.flask("seed-demo")
            self.start_children()
            self.wait_until_ready()
            self.banner()
            while True:
                time.sleep(0.5)
                self.check_children()
        except Interrupted as exc:
            say(f"{exc} received: stopping.")
        except Exception as exc:  # noqa: BLE001 — report it clearly, then clean up
            self.stopping = True
            say(f"ERROR: {exc}" if isinstance(exc, RunError) else f"ERROR: {type(exc).__name__}: {exc}")
            code = 1
        finally:
            self.shutdown()
        say("Stopped." if code == 0 else "Stopped after an error.")
        return code


def _alive(proc):
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def main():
    return Supervisor().run()


if __name__ == "__main__":
    sys.exit(main())
