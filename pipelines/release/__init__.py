"""The public hourly release: pseudonymized Parquet per epoch, signed manifests, verification,
the privacy scan, and recomputation of rewards from the release alone (docs/release.md)."""
