"""The email channel: mailboxes, IMAP fetching, parsing, threading, outbound threaded mail."""
