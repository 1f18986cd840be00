"""A minimal ClamAV daemon client (the INSTREAM command), over a unix socket or TCP.

Configured with CLAMD_SOCKET, or CLAMD_HOST and CLAMD_PORT. Without them, scanning is off and the
admin page says so.
"""
import socket
import struct

CHUNK = 64 * 1024


class ClamdError(Exception):
    """The daemon could not be reached or answered something unexpected."""


class Clamd:
    def __init__(self, *, path=None, host=None, port=3310, timeout=30):
        self.path, self.host, self.port, self.timeout = path, host, port, timeout

    def _connect(self):
        try:
            if self.path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.path)
            else:
                sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise ClamdError(str(exc)) from exc
        return sock

    def scan(self, data):
        """None when clean, else the signature name found. Raises ClamdError."""
        sock = self._connect()
        try:
            sock.sendall(b"zINSTREAM\0")
            for i in range(0, len(data), CHUNK):
                chunk = data[i:i + CHUNK]
                sock.sendall(struct.pack("!L", len(chunk)) + chunk)
            sock.sendall(struct.pack("!L", 0))
            reply = b""
            while not reply.endswith(b"\0"):
                part = sock.recv(4096)
                if not part:
                    break
                reply += part
        except OSError as exc:
            raise ClamdError(str(exc)) from exc
        finally:
            sock.close()
        text = reply.rstrip(b"\0").decode("utf-8", "replace").strip()
        if text.endswith("OK"):
            return None
        if text.endswith("FOUND"):
            return text.split(":", 1)[-1].strip()[: -len("FOUND")].strip()
        raise ClamdError(f"unexpected answer: {text[:200]}")


def from_config(config):
    if config.get("CLAMD_SOCKET"):
        return Clamd(path=config["CLAMD_SOCKET"])
    if config.get("CLAMD_HOST"):
        return Clamd(host=config["CLAMD_HOST"], port=config.get("CLAMD_PORT") or 3310)
    return None
