"""A minimal ClamAV daemon client (the INSTREAM command), over a unix socket or TCP.

Configured with CLAMD_SOCKET, or CLAMD_HOST and CLAMD_PORT. Without them, scanning is off and the
admin page says so.

The daemon's own limits apply: a stream longer than its StreamMaxLength is refused (ClamdError with
the daemon's answer), and a file larger than its MaxFileSize/MaxScanSize is reported clean unless
the daemon sets AlertExceedsMax; keep both above MAIL_MAX_ATTACHMENT_BYTES (Debian's defaults are).
"""
import socket
import struct

CHUNK = 64 * 1024


class ClamdError(Exception):
    """The daemon refused the file or answered something unexpected."""


class ClamdUnavailable(ClamdError):
    """The daemon could not be reached (or the connection broke): try again later."""


class Clamd:
    def __init__(self, *, path=None, host=None, port=3310, timeout=30):
        self.path, self.host, self.port, self.timeout = path, host, port, timeout

    def _connect(self):
        sock = None
        try:
            if self.path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.path)
            else:
                sock = socket.create_connection((self.host, int(self.port)), timeout=self.timeout)
        except OSError as exc:
            if sock is not None:
                sock.close()
            raise ClamdUnavailable(f"{self._where()}: {exc}") from exc
        return sock

    def _where(self):
        return self.path or f"{self.host}:{self.port}"

    @staticmethod
    def _read_reply(sock):
        """The daemon's answer up to its terminating NUL (or until it closes the connection)."""
        reply = b""
        while not reply.endswith(b"\0"):
            part = sock.recv(4096)
            if not part:
                break
            reply += part
        return reply.rstrip(b"\0").decode("utf-8", "replace").strip()

    def _command(self, command, payload=None):
        sock = self._connect()
        try:
            try:
                sock.sendall(b"z" + command + b"\0")
                if payload is not None:
                    view = memoryview(payload)
                    for i in range(0, len(view), CHUNK):
                        chunk = view[i:i + CHUNK]
                        sock.sendall(struct.pack("!L", len(chunk)) + chunk)
                    sock.sendall(struct.pack("!L", 0))
            except OSError as exc:
                # The daemon stops reading and closes when it refuses a stream (size limit): its
                # answer, if it wrote one, says why; else report the socket error.
                try:
                    sock.settimeout(1)
                    answer = self._read_reply(sock)
                except OSError:
                    answer = ""
                if answer:
                    raise ClamdError(answer) from exc
                raise ClamdUnavailable(f"{self._where()}: {exc}") from exc
            answer = self._read_reply(sock)
        except OSError as exc:
            raise ClamdUnavailable(f"{self._where()}: {exc}") from exc
        finally:
            sock.close()
        if not answer:
            raise ClamdUnavailable(f"{self._where()}: the daemon closed the connection without an answer")
        return answer

    def ping(self):
        """True when the daemon answers PONG. Raises ClamdUnavailable when it cannot be reached."""
        return self._command(b"PING") == "PONG"

    def scan(self, data):
        """None when clean, else the signature name found.

        Raises ClamdUnavailable when the daemon cannot be reached, ClamdError when it refuses the
        file (e.g. larger than its StreamMaxLength) or answers something else.
        """
        text = self._command(b"INSTREAM", bytes(data))
        if text.endswith("FOUND"):
            return text.split(":", 1)[-1].strip()[: -len("FOUND")].strip()
        if text.endswith(" OK") or text == "OK":
            return None
        if text.endswith("ERROR"):  # e.g. "INSTREAM size limit exceeded. ERROR"
            raise ClamdError(text[:200])
        raise ClamdError(f"unexpected answer: {text[:200]}")


def from_config(config):
    if config.get("CLAMD_SOCKET"):
        return Clamd(path=config["CLAMD_SOCKET"])
    if config.get("CLAMD_HOST"):
        return Clamd(host=config["CLAMD_HOST"], port=config.get("CLAMD_PORT") or 3310)
    return None
