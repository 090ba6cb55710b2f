"""The one line `dicomscu --store` always ends with: what became of every file.

Every path given or found is counted once, in one of three columns that add up to
the total: stored (with a warning or not), failed (by reason), skipped (by reason).
The line goes to stderr whatever the verbosity, so that a script without a terminal
still sees how many went; `--json` prints the same as an object on stdout.

    dicomscu: 138 of 176 stored (2 with a warning); 30 failed: 28 refused A900H,
    2 unreadable; 8 skipped: 8 DICOMDIR

Shared by the associations of one run (one lock for all).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Reasons, as the line says them.
UNREADABLE = "unreadable"
NOT_FOUND = "not found"
FOLDER_NOT_READ = "folder not read"
NO_CONTEXT = "not accepted by the server"
ASSOCIATION_ENDED = "not sent: the association ended"
IN_FLIGHT = "no answer: the association ended"
DICOMDIR = "DICOMDIR"
INTERRUPTED = "interrupted"


@dataclass
class Summary:
    total: int = 0
    stored: int = 0
    warnings: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    interrupted: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def accounted(self) -> int:
        return self.stored + sum(self.failed.values()) + sum(self.skipped.values())

    def fail(self, reason: str, count: int = 1) -> None:
        with self.lock:
            self.failed[reason] += count

    def skip(self, reason: str, count: int = 1) -> None:
        with self.lock:
            self.skipped[reason] += count

    def store(self, warning: bool) -> None:
        with self.lock:
            self.stored += 1
            self.warnings += warning

    @staticmethod
    def _parts(counts: Counter[str]) -> str:
        return ", ".join(f"{n} {reason}" for reason, n in counts.most_common())

    def line(self) -> str:
        text = f"{self.stored} of {self.total} stored"
        if self.warnings:
            text += f" ({self.warnings} with a warning)"
        if self.failed:
            text += f"; {sum(self.failed.values())} failed: {self._parts(self.failed)}"
        if self.skipped:
            text += f"; {sum(self.skipped.values())} skipped: {self._parts(self.skipped)}"
        return text

    def as_json(self) -> str:
        value: dict[str, Any] = {
            "total": self.total,
            "stored": self.stored,
            "warnings": self.warnings,
            "failed": dict(self.failed),
            "skipped": dict(self.skipped),
            "interrupted": self.interrupted,
        }
        return json.dumps(value, indent=2)
