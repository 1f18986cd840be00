"""The public web form (no login) and its embeddable variant."""
