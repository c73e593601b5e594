"""The ground floor: settings, paths, partitions, asset keys, identity and the shared resources.

Every domain may import it; it imports no domain (enforced by ruff, see its ruff.toml)."""
