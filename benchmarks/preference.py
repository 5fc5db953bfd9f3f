"""Benchmark of the studio's preference learner (issue 16) with simulated users.

A simulated user has a hidden ideal setting in the Explore space (:data:`STUDIO_SPACE`:
method, colour mode, style strength, style scale, blend of two styles) and, shown 4 variants,
picks the one with the highest utility ``-(d2 + 0.1 * categorical mismatches) / temperature``
plus Gumbel noise (``d2``: squared Euclidean distance over the continuous parameters in unit
scale), i.e. usually the nearest, not always. A strategy "reaches" the ideal in the first round
where one of the variants it shows is within 10 % of it: every continuous parameter within 0.1
of its range and every categorical one equal. Strategies:

* ``learner``: :class:`atelier.studio.preference.PreferenceModel` (Bayesian choice model,
  Laplace posterior, the mean's best + 3 Thompson draws);
* ``random``: 4 uniform random settings per round;
* ``grid``: a fixed grid (5 levels per continuous parameter at 0.1, 0.3, ..., 0.9 of the range,
  so every ideal is within 0.1 of a grid point, times every categorical combination: 750
  points) shown 4 per round in one fixed shuffled order.

50 users (seeded), at most ``--max-rounds`` rounds each (a user not reached counts as
``max-rounds`` in the mean; the count of such users is reported).

    python benchmarks/preference.py --json docs/results/preference.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import pathlib
import platform
import sys
import time

import numpy as np

from atelier.studio.preference import STUDIO_SPACE, PreferenceModel, Space

ROOT = pathlib.Path(__file__).resolve().parents[1]


def user_pick(space: Space, ideal: dict, shown: list, temperature: float, rng: np.random.Generator,
              kind: str = "squared") -> int:
    """The simulated user's pick. ``squared``: utility falls with the squared distance (inside the
    learner's model class); ``abs``: with the L1 distance (outside it: a kink at the ideal)."""
    util = []
    for s in shown:
        d2, miss = 0.0, 0
        for d in space.dims:
            if d.categorical:
                miss += s[d.name] != ideal[d.name]
            else:
                diff = abs(d.to_unit(s[d.name]) - d.to_unit(ideal[d.name]))
                d2 += diff ** 2 if kind == "squared" else diff
        util.append(-(d2 + (0.1 if kind == "squared" else 0.3) * miss) / temperature)
    return int(np.argmax(np.asarray(util) + rng.gumbel(size=len(util))))


def grid(space: Space, rng: np.random.Generator) -> list:
    levels = []
    for d in space.dims:
        levels.append(list(d.choices) if d.categorical else [d.from_unit(u) for u in (0.1, 0.3, 0.5, 0.7, 0.9)])
    pts = [dict(zip([d.name for d in space.dims], combo)) for combo in itertools.product(*levels)]
    order = rng.permutation(len(pts))
    return [pts[i] for i in order]


def run_user(strategy: str, space: Space, ideal: dict, seed: int, max_rounds: int, temperature: float,
             grid_points: list, kind: str = "squared") -> int | None:
    rng = np.random.default_rng(seed)
    model = PreferenceModel(space)
    for r in range(1, max_rounds + 1):
        if strategy == "learner":
            shown = model.propose(4, rng)
        elif strategy == "random":
            shown = [space.random(rng) for _ in range(4)]
        else:
            i = (r - 1) * 4 % len(grid_points)
            shown = grid_points[i:i + 4]
        if min(space.distance(s, ideal) for s in shown) <= 0.1 + 1e-9:
            return r
        picked = user_pick(space, ideal, shown, temperature, rng, kind)
        if strategy == "learner":
            model.observe(shown, picked)
    return None


def summarize(rounds: list, max_rounds: int) -> dict:
    capped = [max_rounds if r is None else r for r in rounds]
    return {"mean_rounds": float(np.mean(capped)), "median_rounds": float(np.median(capped)),
            "p90_rounds": float(np.percentile(capped, 90)), "not_reached": sum(r is None for r in rounds),
            "rounds": rounds}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--max-rounds", type=int, default=300)
    ap.add_argument("--users-models", default="squared:0.02,squared:0.05,abs:0.1",
                    help="simulated users as KIND:TEMPERATURE (comma-separated); KIND squared or abs")
    ap.add_argument("--user-seed", type=int, default=1000, help="seed of the first user's ideal (then +1 per user)")
    ap.add_argument("--json", type=pathlib.Path, default=None)
    args = ap.parse_args(argv)
    space = STUDIO_SPACE
    results = {"space": space.to_json(), "users": args.users, "user_seed": args.user_seed,
               "max_rounds": args.max_rounds,
               "criterion": "a shown variant within 0.1 (unit scale) on every continuous parameter and equal on "
                            "every categorical one", "variants_per_round": 4,
               "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
               "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "by_user_model": {}}
    for spec in args.users_models.split(","):
        kind, temp = spec.split(":")[0], float(spec.split(":")[1])
        per = {}
        for strategy in ("learner", "random", "grid"):
            t0 = time.perf_counter()
            rounds = []
            for u in range(args.users):
                urng = np.random.default_rng(args.user_seed + u)
                ideal = space.random(urng)
                pts = grid(space, np.random.default_rng(7))
                rounds.append(run_user(strategy, space, ideal, args.user_seed + 1000 + u, args.max_rounds, temp, pts,
                                       kind))
            per[strategy] = {**summarize(rounds, args.max_rounds), "seconds": time.perf_counter() - t0}
            print(f"{kind} T={temp} {strategy:8s} mean {per[strategy]['mean_rounds']:6.1f} median "
                  f"{per[strategy]['median_rounds']:5.1f} not reached {per[strategy]['not_reached']} "
                  f"({per[strategy]['seconds']:.1f} s)", flush=True)
        per["learner_over_random_mean"] = per["learner"]["mean_rounds"] / per["random"]["mean_rounds"]
        per["learner_over_random_median"] = per["learner"]["median_rounds"] / per["random"]["median_rounds"]
        results["by_user_model"][spec] = per
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
