"""Benchmark: writing the GP documents of one generation's new trees (`forge.gp.to_json`, 50,000 trees by default)
against the plain way, nested dicts through `json.dumps` (`tests/reference/gp_json_reference.py`); texts checked
equal."""

from __future__ import annotations

import random
import sys
from pathlib import Path

from common import arguments, best_of, report
from deap import gp

from apexctl.forge.gp import gen_half_and_half, primitive_set, to_json

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.reference.gp_json_reference import to_json as dicts_to_json


def main() -> None:
    parser = arguments(__doc__, repeats=3)
    parser.add_argument("--trees", type=int, default=50_000, help="trees to write (default 50,000)")
    parser.add_argument("--depth", type=int, default=6, help="greatest depth of the random trees (default 6)")
    args = parser.parse_args()
    pset = primitive_set([f"f{i}" for i in range(20)])
    random.seed(args.seed)
    trees = [gp.PrimitiveTree(gen_half_and_half(pset, 1, args.depth)) for _ in range(args.trees)]
    if [to_json(t) for t in trees] != [dicts_to_json(t) for t in trees]:
        sys.exit("to_json wrote other texts than json.dumps of the nested dicts")
    ours = best_of(lambda: [to_json(t) for t in trees], args.repeats)
    peer = best_of(lambda: [dicts_to_json(t) for t in trees], args.repeats)
    nodes = sum(map(len, trees)) / len(trees)
    report(f"GP documents of {args.trees:,} trees ({nodes:.1f} nodes on average), texts equal", "trees",
           args.trees, ours, peer, "dicts+dumps")  # fmt: skip


if __name__ == "__main__":
    main()
