"""``fleetproof release``: publish every processed epoch in a range from the database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipelines.db import connect
from pipelines.release import manifest, pseudonymize
from pipelines.release.writer import EpochRelease, processed_epochs, write_epoch
from pipelines.rewards_policy import load_rewards_policy


def publish(
    db: str | Path,
    out: str | Path,
    *,
    secret_file: str | Path | None,
    signing_key: str | Path,
    epoch_from: str | None = None,
    epoch_to: str | None = None,
    release_policy: str | Path | None = None,
    rewards_policy: str | Path | None = None,
    progress: Callable[[EpochRelease], None] | None = None,
) -> list[EpochRelease]:
    """Write (or rewrite) the signed release of each processed epoch from ``epoch_from`` to ``epoch_to``."""
    secret = pseudonymize.read_secret(secret_file)
    key = manifest.load_private_key(signing_key)
    policy = pseudonymize.load_release_policy(release_policy)
    rewards = load_rewards_policy(rewards_policy)
    written = []
    with connect(db) as con:
        epochs = processed_epochs(con, epoch_from, epoch_to)
        if not epochs:
            raise ValueError(f"no processed epoch between {epoch_from or 'the first'} and {epoch_to or 'the last'} in {db}")
        for epoch in epochs:
            done = write_epoch(con, out, epoch, secret, key, rewards, policy)
            written.append(done)
            if progress:
                progress(done)
    return written
