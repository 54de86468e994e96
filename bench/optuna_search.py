"""
Optuna's TPESampler on the synthetic objectives of bench/search-objectives.ts (the same functions, in Python), for
bench/search.bench.ts. Reads a JSON request on stdin:
  {"objective": NAME, "seeds": [...], "trials": N, "mode": "default" | "hyperopt", "check": [[assignment, value], ...]}
first checks each `check` point against this file's objective (the TypeScript values, to 1e-9), then runs one study
per seed (TPESampler(seed=s) with Optuna's defaults, or with TPESampler.hyperopt_parameters() for "hyperopt") and
prints {"version": ..., "best": [[best loss after each trial] per seed], "seconds": ...}.
"""
import json
import math
import sys
import time

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(x1, x2):
    b = 5.1 / (4 * math.pi ** 2)
    c = 5 / math.pi
    t = 1 / (8 * math.pi)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def mixed_bowl(a):
    return {"a": 1, "b": 2, "c": 0, "d": 0.5}[a["c"]] + (a["x"] - 1.3) ** 2 / 4 + (math.log10(a["lr"]) + 2) ** 2 + ((a["n"] - 7) / 8) ** 2


def branin_mixed(a):
    return branin(a["x1"], a["x2"]) + math.log(a["scale"]) ** 2 + (1 if a["mode"] == "shifted" else 0)


def training_like(a):
    llr = math.log(a["lr"])
    if a["opt"] == "nesterov":
        branch = (llr + 6.5) ** 2 / 4 + 8 * (a["m"] - 0.9) ** 2
    else:
        branch = (llr + 9) ** 2 / 4 + 4 * (a["b1"] - 0.8) ** 2 + 400 * (a["b2"] - 0.999) ** 2 - 0.1
    d = a["dropout"]
    return 1 + branch + (0 if a["mirror"] else 0.3) + ((math.log2(a["units"]) - 9) / 3) ** 2 + 2 * (d - 0.45) ** 2 + 0.2 * (d - 0.45) * (llr + 9)


# Each space as Optuna's define-by-run calls, matching the TypeScript space string (quniform(1,32,1) → int 1..32,
# qloguniform(64,4096,64) → float with step 64 on a log scale is not allowed in Optuna, so: int log-scale then rounded
# to a multiple of 64, the same values hyperopt's qloguniform takes).
def suggest_mixed_bowl(t):
    return {"c": t.suggest_categorical("c", ["a", "b", "c", "d"]), "x": t.suggest_float("x", -5, 5),
            "lr": t.suggest_float("lr", 1e-5, 1, log=True), "n": t.suggest_int("n", 1, 32)}


def suggest_branin_mixed(t):
    return {"x1": t.suggest_float("x1", -5, 10), "x2": t.suggest_int("x2", 0, 15),
            "scale": t.suggest_float("scale", 0.1, 10, log=True), "mode": t.suggest_categorical("mode", ["plain", "shifted"])}


def suggest_training_like(t):
    a = {"opt": t.suggest_categorical("opt", ["nesterov", "adam"])}
    if a["opt"] == "nesterov":
        a["m"] = t.suggest_float("m", 0.5, 1)
    else:
        a["b1"] = t.suggest_float("b1", 0, 0.9)
        a["b2"] = t.suggest_float("b2", 0.99, 1)
    a["lr"] = t.suggest_float("lr", math.exp(-12), math.exp(-5), log=True)
    a["mirror"] = t.suggest_categorical("mirror", [False, True])
    a["units"] = max(64, round(t.suggest_int("units", 64, 4096, log=True) / 64) * 64)
    a["dropout"] = t.suggest_float("dropout", 0, 0.75)
    return a


OBJECTIVES = {"mixed-bowl": (mixed_bowl, suggest_mixed_bowl), "branin-mixed": (branin_mixed, suggest_branin_mixed),
              "training-like": (training_like, suggest_training_like)}


def main():
    req = json.load(sys.stdin)
    f, space = OBJECTIVES[req["objective"]]
    for a, v in req.get("check", []):
        got = f(a)
        if abs(got - v) > 1e-9 * max(1, abs(v)):
            sys.exit(f"objective {req['objective']} differs from TypeScript at {a}: {got} vs {v}")
    t0 = time.time()
    best = []
    for seed in req["seeds"]:
        kw = optuna.samplers.TPESampler.hyperopt_parameters() if req.get("mode") == "hyperopt" else {}
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, **kw))
        curve = []
        study.optimize(lambda t: f(space(t)), n_trials=req["trials"],
                       callbacks=[lambda s, t: curve.append(s.best_value)])
        best.append(curve)
    print(json.dumps({"version": optuna.__version__, "best": best, "seconds": time.time() - t0}))


if __name__ == "__main__":
    main()
