"""HELPDESK_REQUIRE_SERVICES=1 turns a skip (a missing server) into a failure."""
SKIPPING = """
import pytest

def test_needs_a_server():
    pytest.skip("no Dovecot on this machine")
"""


def test_skip_is_a_skip_on_a_laptop(pytester, monkeypatch):
    monkeypatch.delenv("HELPDESK_REQUIRE_SERVICES", raising=False)
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest("-p", "tests.require_services")
    result.assert_outcomes(skipped=1)


def test_skip_fails_when_services_are_required(pytester, monkeypatch):
    monkeypatch.setenv("HELPDESK_REQUIRE_SERVICES", "1")
    pytester.makepyfile(SKIPPING)
    result = pytester.runpytest("-p", "tests.require_services")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*HELPDESK_REQUIRE_SERVICES=1 but the test was skipped*no Dovecot*"])
