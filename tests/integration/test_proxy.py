"""TRUSTED_PROXIES: behind a reverse proxy, per-IP limits see the real client, not the proxy."""


def _failed_logins(client, ip, n):
    """n failed logins from `ip`, each for its own account (so only the per-IP limit can bite)."""
    codes = []
    for i in range(n):
        r = client.post("/login", data={"email": f"nobody{i}.{ip}@example.com", "password": "wrong-password"},
                        headers={"X-Forwarded-For": ip})
        codes.append(r.status_code)
    return codes


def test_limits_are_per_real_client_behind_a_trusted_proxy(app_factory):
    app = app_factory(TRUSTED_PROXIES=1, LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    assert _failed_logins(client, "203.0.113.7", 4)[-1] == 429
    # Another customer behind the same proxy is not blocked by the first one's attempts.
    assert _failed_logins(client, "198.51.100.9", 1) == [200]


def test_forwarded_header_is_ignored_without_trusted_proxies(app_factory):
    app = app_factory(TRUSTED_PROXIES=0, LOGIN_RATE_LIMIT="3 per minute")
    client = app.test_client()
    _failed_logins(client, "203.0.113.7", 3)
    # A client cannot dodge the limit by inventing X-Forwarded-For when no proxy is trusted.
    assert _failed_logins(client, "198.51.100.9", 1) == [429]
