"""What the golden scripts share."""
import hashlib


def sha256(path):
    """SHA-256 of a file as 64 hex digits (read in 1 MiB chunks: checkpoints are large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
