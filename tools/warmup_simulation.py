"""Print the quota curves of the simulated 90-day warmup: six IPs, a Gmail-heavy list, realistic deferrals, a clean
list and the same at 0.5 % complaints (see tests/integration/ippool/warmup_simulation.py for the model).

Run: `.venv/bin/python tools/warmup_simulation.py [days] [seed]` (about 20 s; real use cases over SQLite files in a
temporary directory).
"""

from __future__ import annotations

import sys

from tests.integration.ippool.warmup_simulation import both_curves


def main(argv: list[str]) -> None:
    days = int(argv[1]) if len(argv) > 1 else 90
    seed = int(argv[2]) if len(argv) > 2 else 2026
    print(both_curves(days=days, seed=seed))


if __name__ == "__main__":
    main(sys.argv)
