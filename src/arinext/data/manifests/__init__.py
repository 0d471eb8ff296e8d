"""One small adapter per source: ``(root, subset, **options) -> Manifest`` from the real on-disk layout."""
