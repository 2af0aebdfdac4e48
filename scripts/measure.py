"""Wall time and peak memory of one whole process, for the benchmark scripts.

The peak resident memory comes from GNU time (`/usr/bin/time`, Debian package `time`):
a child forked from Python starts with Python's own pages counted, so Python's rusage
would report the benchmark's memory, not the command's.
"""

import subprocess
import tempfile
import time
from pathlib import Path

GNU_TIME = Path("/usr/bin/time")


def measured(cmd):
    """(wall seconds, peak RSS in MB, stdout) of `cmd`, which must succeed."""
    if not GNU_TIME.exists():
        raise SystemExit("/usr/bin/time not found: apt-get install time")
    with tempfile.NamedTemporaryFile("r") as rss:
        started = time.perf_counter()
        done = subprocess.run([str(GNU_TIME), "-f", "%M", "-o", rss.name, *map(str, cmd)],
                              capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(map(str, cmd))} failed: {done.stderr}")
        kb = int(rss.read().split()[-1])
    return wall, kb / 1024, done.stdout
