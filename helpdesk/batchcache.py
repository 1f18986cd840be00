"""Read caches that live for one batch of work in one transaction (a chunk of inbound mail).

A batch opens a cache on the session (`opened()`); services that read the same rows for every
item of the batch (the queue's agents, a sender's customer record, whether an address bounces)
look them up here first (`lookup`), and the batch may fill them in one statement beforehand
(`lookup_many`). A service that changes such a row updates its entry (`put`): loading an entry
never flushes the batch's pending rows (they are written together at its end). Outside a batch nothing is
cached: every lookup reads the database as before.

After a savepoint rollback the entries may describe rows that no longer exist: call `clear()`.
"""
from contextlib import contextmanager

from .extensions import db

_KEY = "batch_cache"


@contextmanager
def opened():
    """A cache for the duration of the block (nested blocks share the outer one)."""
    if _KEY in db.session.info:
        yield
        return
    db.session.info[_KEY] = {}
    try:
        yield
    finally:
        db.session.info.pop(_KEY, None)


def _bucket(name):
    cache = db.session.info.get(_KEY)
    return None if cache is None else cache.setdefault(name, {})


def lookup(name, key, load):
    """The cached value of `key` in `name`, else `load()` (cached when a batch is open)."""
    bucket = _bucket(name)
    if bucket is None:
        return load()
    if key not in bucket:
        with db.session.no_autoflush:  # what the batch changed is `put` here, not read back
            bucket[key] = load()
    return bucket[key]


def get(name, key, default=None):
    """The cached value of `key` in `name`, without loading it (`default` when there is none)."""
    bucket = _bucket(name)
    return default if bucket is None else bucket.get(key, default)


def lookup_many(name, keys, load_many):
    """{key: value} for these keys: cached ones, the others from `load_many(missing keys)` (one
    statement for all of them, which must return a value for each key it was given)."""
    bucket = _bucket(name)
    if bucket is None:
        return load_many(list(keys))
    missing = [k for k in dict.fromkeys(keys) if k not in bucket]
    if missing:
        with db.session.no_autoflush:
            bucket.update(load_many(missing))
    return {k: bucket[k] for k in keys}


def values(name):
    """The cached values of `name` (none outside a batch)."""
    bucket = _bucket(name)
    return [] if bucket is None else list(bucket.values())


def put(name, key, value):
    """Record a change the caller just made; a no-op outside a batch."""
    bucket = _bucket(name)
    if bucket is not None:
        bucket[key] = value


def is_open():
    return _KEY in db.session.info


def clear():
    """Forget every entry (after a rollback); the batch stays open."""
    cache = db.session.info.get(_KEY)
    if cache is not None:
        cache.clear()
