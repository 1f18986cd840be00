"""Running the same work in several threads at once, each with its own app context, session and
database connection, lined up by a barrier (two sweeps started together, as two workers would)."""
import threading

from helpdesk.extensions import db


def at_once(app, *calls, timeout=120):
    """Run each call (a no-argument function) in its own thread at the same moment. Returns their
    results in the order of `calls`; fails with every exception a thread raised."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def run(i, call):
        with app.app_context():
            try:
                barrier.wait(timeout=30)
                results[i] = call()
            except Exception as exc:  # reported below, in the test's thread
                errors.append(repr(exc))
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert errors == [], errors
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    return results
