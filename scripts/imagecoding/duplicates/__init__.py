"""Near-duplicate groups: reposts, re-encodings, crops and banners of one picture counted as one."""
