"""``python -m bundlewise``: the command line."""

from __future__ import annotations

from bundlewise.cli.main import main

if __name__ == "__main__":
    main()
