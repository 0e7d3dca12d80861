#!/usr/bin/python3
"""Leave-one-source-out cross-validation of trainer settings, without the out-of-source set.

    tools/classifier/source_cv.py --build build/release --data build/classifier-data \
        base="" lr02="--learning_rate 0.02 --l2 1e-4" nochar="--char_ngram_min 0"

For each NAME="TRAINER FLAGS" and each source of task_train.jsonl, trains on the other sources and
evaluates on the held-out one (the task model only: the complexity model gets a small stand-in
file). Prints one JSON line per setting: each source's accuracy when unseen, their mean, and the
macro-F1 on the authored prompts (the only held-out source with all five classes). A setting that
generalises across sources scores higher here; use it to choose settings, then measure the real
out-of-source evaluation (task_eval.jsonl) once.
"""
import argparse
import concurrent.futures
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="build tree with tiermesh-train-classifier")
    parser.add_argument("--data", required=True, help="tiermesh-prepare-classifier-data output")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("settings", nargs="+", help='NAME="trainer flags"')
    args = parser.parse_args()
    trainer = os.path.join(args.build, "tools/classifier/tiermesh-train-classifier")
    with open(os.path.join(args.data, "task_train.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    sources = sorted({r["source"] for r in rows})
    work = tempfile.mkdtemp(prefix="tiermesh-source-cv.")
    for s in sources:
        with open(os.path.join(work, f"train-{s}.jsonl"), "w") as train, \
                open(os.path.join(work, f"eval-{s}.jsonl"), "w") as held:
            for r in rows:
                (held if r["source"] == s else train).write(json.dumps(r) + "\n")
    with open(os.path.join(args.data, "complexity.jsonl")) as f, \
            open(os.path.join(work, "complexity.jsonl"), "w") as out:
        for i, line in enumerate(f):
            if i >= 800:
                break
            out.write(line)

    def run(name, flags, source):
        report = os.path.join(work, f"{name}-{source}.json")
        done = subprocess.run(
            [trainer, "--task_data", os.path.join(work, f"train-{source}.jsonl"),
             "--complexity_data", os.path.join(work, "complexity.jsonl"),
             "--eval_data", os.path.join(work, f"eval-{source}.jsonl"),
             "--out", os.path.join(work, f"{name}-{source}.tmcl"), "--report", report, *flags],
            capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"source_cv: {name} without {source}: {done.stderr.strip()}")
        with open(report) as f:
            return source, json.load(f)["task_eval"]["learned"]

    try:
        for setting in args.settings:
            name, _, flags = setting.partition("=")
            with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
                results = dict(pool.map(lambda s: run(name, shlex.split(flags), s), sources))
            accuracy = {s: round(r["accuracy"], 3) for s, r in results.items()}
            line = {"setting": name, "flags": flags,
                    "mean_accuracy_unseen_source": round(sum(accuracy.values()) / len(accuracy), 3),
                    "accuracy_unseen_source": accuracy}
            if "tiermesh_authored" in results:
                line["authored_macro_f1"] = round(results["tiermesh_authored"]["macro_f1"], 3)
            print(json.dumps(line), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
