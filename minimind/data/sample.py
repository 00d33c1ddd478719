"""The built-in sample corpus: real English that ships with Python itself, built offline in seconds.

Documents are the help topics of ``pydoc_data.topics`` (the text ``help('FOR')`` shows) and the
long triple-quoted strings (docstrings, mostly) of the standard library's source files. The
corpus is deterministic for a given Python installation: same files, same order, same bytes.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import os
import re
import sysconfig
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from minimind.files import atomic_write

# A small lexer instead of ast.parse (ten times faster over the ~700 files): comments and one-line
# strings are matched too, so that quotes inside them never start a false triple-quoted string.
_LEXEME = re.compile(r"""#[^\n]*|([rRbBuUfF]{0,2})(\"\"\"|\'\'\')((?:\\.|(?!\2).)*)\2"""
                     r"""|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'""", re.S)
_MIN_CHARS = 80
_SKIP_DIRS = {"site-packages", "dist-packages", "__pycache__", "test", "tests", "idle_test"}
SAMPLE_NAME = "built-in sample corpus"


def _is_prose(text: str) -> bool:
    # Keeps docstrings and messages, drops the odd encoded blob or table of numbers in a test file.
    letters = sum(c.isalpha() or c == " " for c in text)
    return letters >= 0.6 * len(text)


def _topics() -> Iterator[tuple[str, str]]:
    from pydoc_data.topics import topics

    for name in sorted(topics):
        yield f"pydoc_data.topics:{name}", topics[name]


def _stdlib_strings() -> Iterator[tuple[str, str]]:
    """Docstrings (and other statement-level triple-quoted strings) of the standard library's sources."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            file = Path(dirpath) / name
            source = file.read_text(encoding="utf-8", errors="replace")
            rel = file.relative_to(root).as_posix()
            for match in _LEXEME.finditer(source):
                prefix, quotes, body = match.group(1, 2, 3)
                if not quotes or len(body) < _MIN_CHARS or set(prefix.lower()) & {"b", "f"}:
                    continue
                line_start = source.rfind("\n", 0, match.start()) + 1
                if source[line_start:match.start()].strip():
                    continue  # not a statement of its own: an argument, an assignment, ...
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # invalid escapes such as "\d" in old docstrings
                        value = ast.literal_eval(match.group(0))
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    continue
                yield rel, inspect.cleandoc(value)


def sample_documents() -> Iterator[dict]:
    seen: set[bytes] = set()
    for source, text in (*_topics(), *_stdlib_strings()):
        text = text.strip()
        if len(text) < _MIN_CHARS or not _is_prose(text):
            continue
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()
        if digest in seen:
            continue
        seen.add(digest)
        yield {"text": text, "source": source}


def build_sample_corpus(path: str | Path) -> Path:
    """Write the sample corpus to ``path`` as JSON Lines (one document per line) and return the path."""
    import json

    def write(f) -> None:
        for doc in sample_documents():
            try:
                f.write((json.dumps(doc, ensure_ascii=False) + "\n").encode("utf-8"))
            except UnicodeEncodeError:  # a lone surrogate in some test string: not text
                continue

    return atomic_write(path, write)


def prepare_sample(out_dir: str | Path, *, on_progress=None, **kwargs):
    """Prepare the sample corpus into ``out_dir`` (a dataset directory); ``on_progress`` and kwargs
    go to ``prepare_dataset``.

    The corpus is rebuilt in a temporary directory each time (a couple of seconds) so that reuse of
    an existing dataset is decided by content, like any other input.
    """
    from minimind.data.prepare import prepare_dataset

    with tempfile.TemporaryDirectory(prefix="minimind-sample-") as tmp:
        corpus = build_sample_corpus(Path(tmp) / "sample.jsonl")
        return prepare_dataset([corpus], out_dir, source_names=[SAMPLE_NAME], on_progress=on_progress, **kwargs)
