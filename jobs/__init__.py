"""jobs: see the README; filled in by its issue."""
