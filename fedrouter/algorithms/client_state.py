"""Client-private state (local adapters, B matrices, embeddings, cluster labels) kept on the client.

State is versioned by round: a train call for round r starts from the newest state saved for a
round < r. A run killed after a client saved round r but before the server checkpointed it then
redoes round r from the same state as the first attempt, which keeps resumed runs identical."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedrouter.utils.io import atomic_save_npz, atomic_write_json, load_npz

_NAME = re.compile(r"state_r(\d+)\.json$")


@dataclass
class ClientState:
    round: int = 0  # round whose end this state describes (0 = nothing yet)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


class ClientStore:
    """A client's own folder. In simulation it lives under the run folder's `clients/`, which the
    server never reads; in deployment each SuperNode passes its own `client-state-dir`."""

    def __init__(self, root: Path, client_id: int, keep: int = 2, run_id: int | None = None):
        self.dir = Path(root) / f"client_{client_id}"
        self.keep = keep
        self.run_id = run_id  # the Flower run saving state now (None: unknown)

    def _run_of(self, r: int) -> int | None:
        try:
            return json.loads((self.dir / f"state_r{r}.json").read_text()).get("_run")
        except (OSError, ValueError):
            return None

    def _rounds(self) -> list[int]:
        if not self.dir.exists():
            return []
        return sorted(int(m.group(1)) for p in self.dir.iterdir() if (m := _NAME.match(p.name)))

    def load(self, before_round: int) -> ClientState:
        rounds = [r for r in self._rounds() if r < before_round]
        if not rounds:
            return ClientState()
        r = rounds[-1]
        meta = json.loads((self.dir / f"state_r{r}.json").read_text())
        meta.pop("_run", None)
        arrays = load_npz(self.dir / f"state_r{r}.npz") if meta.pop("_has_arrays", False) else {}
        return ClientState(r, arrays, meta)

    def save(self, state: ClientState) -> None:
        # State of a later round saved by another Flower run belongs to an abandoned attempt (a run
        # started over with resume=false in a folder the server cannot clear, e.g. a SuperNode's):
        # drop it. Saved by this run, it is newer than this save: a reply that came after the
        # server's reply_timeout, while the client's next round already ran. Keep it.
        for r in self._rounds():
            if r > state.round and (self.run_id is None or self._run_of(r) != self.run_id):
                for suffix in (".json", ".npz"):
                    (self.dir / f"state_r{r}{suffix}").unlink(missing_ok=True)
        # Arrays first, then the JSON that marks the round as present: a crash in between leaves
        # an orphan .npz that no load ever reads.
        if state.arrays:
            atomic_save_npz(self.dir / f"state_r{state.round}.npz", state.arrays)
        atomic_write_json(self.dir / f"state_r{state.round}.json",
                          {**state.meta, "_has_arrays": bool(state.arrays), "_run": self.run_id})
        for r in self._rounds()[: -self.keep]:
            for suffix in (".json", ".npz"):
                (self.dir / f"state_r{r}{suffix}").unlink(missing_ok=True)

    def save_eval(self, rnd: int, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """What the client saw at an evaluation round (e.g. test embeddings and routing), for local
        analysis and plots; never sent anywhere."""
        atomic_save_npz(self.dir / f"eval_r{rnd}.npz", arrays)
        atomic_write_json(self.dir / f"eval_r{rnd}.json", meta)

    def eval_rounds(self) -> list[int]:
        """Rounds with a saved evaluation (complete: its JSON is written after its arrays)."""
        return sorted(int(p.stem[len("eval_r"):]) for p in self.dir.glob("eval_r*.json"))

    def load_eval(self, rnd: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return load_npz(self.dir / f"eval_r{rnd}.npz"), json.loads((self.dir / f"eval_r{rnd}.json").read_text())

    def save_predictions(self, rnd: int, rows: list[dict[str, Any]]) -> None:
        atomic_write_json(self.dir / f"predictions_r{rnd}.json", rows)

    def load_predictions(self, rnd: int) -> list[dict[str, Any]]:
        """The rows `save_predictions` kept for round `rnd` (task, prediction, reference, rouge1), in test order."""
        return json.loads((self.dir / f"predictions_r{rnd}.json").read_text())
