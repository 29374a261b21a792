"""Mail domains only accredited institutions can hold (``data/institution_mail_suffixes.csv``).

Honest model: a university's or a government's mail namespace (``.edu``, ``.ac.uk``, ``.go.jp``,
...) is registered only to accredited institutions, and the institution hands mailboxes to its
own identified members. A farmer can buy any number of mailboxes at a free or a self-owned
domain, not at these. A group of accounts at one site whose mailboxes are at such a domain is the
institution's members, and what they share beyond that (a department wallet that pays their
stakes, one workstation image, one administrator who staked for all at once) is the institution's
administration (``communities.score_clusters``)."""

from __future__ import annotations

import csv
from functools import cache

from pipelines.catalogue import DATA_DIR

SUFFIXES_CSV = DATA_DIR / "institution_mail_suffixes.csv"


@cache
def institution_suffixes() -> frozenset[str]:
    """The restricted suffixes, lower case, without a leading dot."""
    with SUFFIXES_CSV.open(newline="") as f:
        return frozenset(row["suffix"].strip().lower().strip(".") for row in csv.DictReader(f))


def is_institutional(domain: str | None) -> bool:
    """Whether a mail domain is under a suffix only accredited institutions can register
    (``student.ed-uni.ac.uk`` is; ``ac.uk`` itself, ``mailpoof.org`` or ``uni-example.de`` are not)."""
    if not domain:
        return False
    d = domain.strip().lower().rstrip(".")
    return any(d.endswith("." + s) for s in institution_suffixes())
