"""pytest plugin: with HELPDESK_REQUIRE_SERVICES=1 (set by .ci/run) a skipped test fails the run.

On a laptop a test whose server (PostgreSQL, Dovecot, Chromium) is missing skips and says why; in CI
the same skip must not pass silently.
"""
import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("HELPDESK_REQUIRE_SERVICES") == "1" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"HELPDESK_REQUIRE_SERVICES=1 but the test was skipped: {reason}"
