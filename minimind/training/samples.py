"""Live samples: what the model writes, made by the trainer while it trains.

At every evaluation (and when asked through the control file) rank 0 greedily continues a few
fixed prompts with the plain model (never the compiled or DDP wrapper: no gradient, no sync) and
the loop reports each continuation as a ``sample`` event. The other ranks do not wait for it: they
go on to the next step, whose first all-reduce holds them until rank 0 joins.

The prompts are ``train.sample_prompts``; by default the first words of a few validation documents
(training documents when the validation split is empty), decoded with the dataset's tokenizer, so
they stay the same across resumes. Continuations are ``train.sample_tokens`` long.

Bounded in time: all rounds together may take ``SHARE`` of the trainer's wall time so far, but
each round may take at least ``FLOOR_S``; a round's budget is split evenly between its prompts, and a
continuation that reaches its deadline stops there (its event says ``stopped: "time"``). Greedy
decoding draws no random numbers, so sampling never changes the training run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minimind.data.format import TOKENIZER_DIR, open_split

if TYPE_CHECKING:
    from minimind.training.build import Built

SHARE = 0.03  # of the wall time since the trainer started, for all sample rounds together
FLOOR_S = 0.5  # a round may always take this long
DEFAULT_PROMPTS = 3  # validation documents that give the default prompts
PROMPT_TOKENS = 12  # tokens of each document decoded for its default prompt
PROMPT_CHARS = 40  # and at most this many characters of them, cut at a space


@dataclass(frozen=True)
class Sample:
    prompt: str
    text: str
    seconds: float
    new_tokens: int
    stopped: str  # eos | max_new_tokens | time | context

    def fields(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "text": self.text, "seconds": self.seconds,
                "new_tokens": self.new_tokens, "stopped": self.stopped}


class Sampler:
    """Makes the samples of one trainer process (use it on rank 0 only)."""

    def __init__(self, built: Built, started: float | None = None):
        self.built = built
        self.max_new_tokens = built.cfg.train.sample_tokens
        self.started = time.perf_counter() if started is None else started
        self.spent = 0.0
        self._tokenizer = None
        self._prompts: list[str] | None = None
        self.unavailable: str | None = None  # why there are no samples, once known

    @property
    def enabled(self) -> bool:
        return self.max_new_tokens > 0 and self.built.cfg.train.sample_prompts != [] and self.unavailable is None

    def prepare(self) -> str | None:
        """Load the tokenizer and the prompts (once). Returns a note when samples are unavailable."""
        if self._prompts is not None or self.unavailable is not None:
            return None
        data = Path(self.built.cfg.data.path or "")
        tok_dir = data / TOKENIZER_DIR
        if not (tok_dir / "tokenizer.json").is_file():
            self.unavailable = f"no live samples: the dataset {data} has no {TOKENIZER_DIR}/ to write text with"
            return self.unavailable
        from minimind.data.tokenizer import load_tokenizer

        self._tokenizer = load_tokenizer(tok_dir)
        prompts = self.built.cfg.train.sample_prompts
        self._prompts = list(prompts) if prompts is not None else default_prompts(data, self._tokenizer)
        if not self._prompts:
            self.unavailable = "no live samples: the dataset has no documents to take prompts from"
            return self.unavailable
        return None

    @property
    def prompts(self) -> list[str]:
        return list(self._prompts or [])

    def budget(self) -> float:
        """Seconds this round may take."""
        allowed = SHARE * (time.perf_counter() - self.started) - self.spent
        return max(FLOOR_S, allowed)

    def run(self) -> list[Sample]:
        """One round: a continuation of every prompt (none when samples are off or unavailable)."""
        if not self.enabled or self.prepare() is not None or not self.enabled:
            return []
        from minimind.weights.generate import continue_tokens

        t_round = time.perf_counter()
        share = self.budget() / len(self._prompts)
        model, tok, built = self.built.model, self._tokenizer, self.built
        limit = max(1, built.cfg.model.max_position_embeddings - 1)
        samples = []
        for prompt in self._prompts:
            t0 = time.perf_counter()
            ids = ([tok.bos_id] + tok.encode(prompt))[-limit:]
            with built.autocast():
                new, stopped = continue_tokens(model, ids, self.max_new_tokens, tok.eos_id, deadline=t0 + share)
            text = tok.tokenizer.decode(new, skip_special_tokens=True)
            samples.append(Sample(prompt, text, time.perf_counter() - t0, len(new), stopped))
        self.spent += time.perf_counter() - t_round
        return samples


def default_prompts(data: Path, tokenizer, n: int = DEFAULT_PROMPTS) -> list[str]:
    """The first words of the first ``n`` documents of the validation split (else of the training
    split) that have any text, decoded with the dataset's tokenizer."""
    prompts: list[str] = []
    for split_name in ("val", "train"):
        split = open_split(data, split_name)
        for i in range(split.n_docs):
            ids = [int(t) for t in split.doc(i)[:PROMPT_TOKENS + 1]]
            ids = [t for t in ids if t not in (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)]
            text = " ".join(tokenizer.tokenizer.decode(ids[:PROMPT_TOKENS], skip_special_tokens=True).split())
            text = _cut(text, PROMPT_CHARS)
            if text and text not in prompts:
                prompts.append(text)
            if len(prompts) == n:
                return prompts
        if prompts:
            return prompts
    return prompts


def _cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, ending before a space when there is one past a third of them."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", limit // 3, limit + 1)
    return text[:space] if space > 0 else text[:limit]
