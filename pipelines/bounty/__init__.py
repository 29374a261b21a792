"""Bounty intake: hunters' reports against a public release, automatic checks, a person's
review, verdict overrides with the reporter credited, and exact payouts (docs/bounty.md)."""
