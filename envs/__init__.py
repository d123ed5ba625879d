"""Task families shipped with metarl-bench; each module registers its distributions."""
