"""Locating and reading the shared real-world email corpora (never copied into this repository).

The folder is HELPDESK_CORPORA, else ../shared/corpora beside the checkout, else /work/shared/corpora.
Tests that need it skip, saying why, when it is absent.
"""
from __future__ import annotations

import base64
import json
import os
import unicodedata
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def corpora_dir() -> Path | None:
    candidates = []
    if os.environ.get("HELPDESK_CORPORA"):
        candidates.append(Path(os.environ["HELPDESK_CORPORA"]))
    candidates += [ROOT.parent / "shared" / "corpora", Path("/work/shared/corpora")]
    for path in candidates:
        if path.is_dir() and (path / "README.md").exists():
            return path
    return None


CORPORA = corpora_dir()
SKIP_REASON = "email corpora not found (set HELPDESK_CORPORA or provide ../shared/corpora)"
needs_corpora = pytest.mark.skipif(CORPORA is None, reason=SKIP_REASON)


def corpus(name: str) -> Path | None:
    return CORPORA / name if CORPORA is not None else None


def files(name: str, pattern: str) -> list[Path]:
    """Sorted files of a corpus matching a glob (empty when the corpora are absent)."""
    base = corpus(name)
    if base is None or not base.is_dir():
        return []
    return sorted(p for p in base.glob(pattern) if p.is_file())


def rel(path: Path, name: str) -> str:
    return path.relative_to(corpus(name)).as_posix()


def params(name: str, pattern: str) -> list:
    """pytest params (id = path inside the corpus); one skipped placeholder when absent."""
    found = files(name, pattern)
    if not found:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id=f"{name}-absent")]
    return [pytest.param(p, id=rel(p, name)) for p in found]


def all_messages() -> list[Path]:
    """Every message file of every corpus (.eml, .box, and the plain reply bodies)."""
    out = []
    for name, patterns in (("zammad", ("**/*.box", "**/*.eml")), ("stalwart-mail-parser", ("**/*.eml",)),
                           ("talon", ("**/*.eml",)), ("django-helpdesk", ("**/*.eml",))):
        for pattern in patterns:
            out += files(name, pattern)
    return out


@lru_cache(maxsize=None)
def expected_json(name: str) -> dict:
    return json.loads((corpus(name) / "expected.json").read_text(encoding="utf-8"))


def load_zammad_yml(path: Path) -> dict:
    """A Zammad expectation file: Ruby-tagged YAML (`!ruby/hash:...`, `!binary`)."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is needed to read the Zammad .yml expectations")

    class Loader(yaml.SafeLoader):
        pass

    def ruby(loader, _suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    def binary(loader, node):
        return base64.b64decode(loader.construct_scalar(node))

    Loader.add_multi_constructor("!ruby/", ruby)
    Loader.add_constructor("!binary", binary)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)  # noqa: S506 - SafeLoader subclass


def norm(text: str | None) -> str:
    """NFC, whitespace collapsed (the README's comparison rule)."""
    return " ".join(unicodedata.normalize("NFC", text or "").split())


def no_ws(text: str | None) -> str:
    return "".join((text or "").split())
