#!/usr/bin/env python3
"""Copy only the data extents of a sparse file (SEEK_DATA/SEEK_HOLE) to OUT.

The bench measures deflate and SHA-256 rates on this dense copy, so that a
rate is megabytes of the disk's real data per second, the same unit as the
writers' rates (a raw disk's holes would make any compressor look fast).
Prints the number of bytes written."""
import os
import sys

CHUNK = 1 << 20


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: extents.py SPARSE_FILE OUT", file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    total = 0
    with open(src, "rb") as f, open(dst, "wb") as out:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole remains
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            f.seek(data)
            left = hole - data
            while left > 0:
                buf = f.read(min(CHUNK, left))
                if not buf:
                    break
                out.write(buf)
                left -= len(buf)
                total += len(buf)
            pos = hole
    print(total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
