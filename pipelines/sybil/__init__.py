"""Sybil detection: an account graph from many weak signals, communities, and scored clusters."""
