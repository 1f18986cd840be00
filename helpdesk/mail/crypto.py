"""Mailbox passwords at rest: Fernet (AES-128-CBC + HMAC) with a key from the configuration.

The key is MAILBOX_SECRET_KEY when set (any string; rotate by re-entering the passwords), else it
is derived from SECRET_KEY. A password can also stay out of the database entirely: the mailbox then
names an environment variable (password_env) that holds it.
"""
import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken


class PasswordUnavailable(Exception):
    """The stored password cannot be read (wrong key, or the environment variable is unset)."""


def _fernet(secret):
    key = base64.urlsafe_b64encode(hashlib.sha256(("mailbox-password:" + secret).encode()).digest())
    return Fernet(key)


def encrypt(password, secret):
    return _fernet(secret).encrypt(password.encode()).decode("ascii")


def decrypt(token, secret):
    try:
        return _fernet(secret).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, ValueError) as exc:
        raise PasswordUnavailable("the stored mailbox password cannot be decrypted with this key") from exc


def mailbox_password(mailbox, secret):
    """The password of a Mailbox row: from its environment variable, else decrypted."""
    if mailbox.password_env:
        value = os.environ.get(mailbox.password_env)
        if value is None:
            raise PasswordUnavailable(f"environment variable {mailbox.password_env} is not set")
        return value
    if not mailbox.password_encrypted:
        raise PasswordUnavailable("no password is stored for this mailbox")
    return decrypt(mailbox.password_encrypted, secret)
