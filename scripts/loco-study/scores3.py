"""
Leave-one-class-out, third round: what a k-nearest-neighbour check costs to carry in a model file. The second
round found that the 10-NN cosine distance to PBC's training cells (all 2,192 standardized features, every
training row) flags 85 / 90 % of erythroblasts. A model file cannot carry ~4,000 rows of 2,192 floats, so here
the rows are projected (PCA fitted on the training rows of the known classes), subsampled per class, and scored
per lab (each lab's validation cells against its own lab's reference rows, thresholds per lab), alone and under
one shared budget with the two checks the product has (Mahalanobis, block-head disagreement).

Usage: python3 -u scripts/loco-study/scores3.py
"""
import sys
import numpy as np

sys.path.insert(0, 'scripts/loco-study')
from scores import X, lab, mahalanobis, off, probs, softmax_head, src, val  # noqa: E402

BUDGETS = (0.05, 0.10)
rng = np.random.default_rng(0)


def knn_ref(R, k):
    A = R / np.linalg.norm(R, axis=1, keepdims=True)

    def dist(Q):
        B = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        out = np.empty(len(B))
        for s in range(0, len(B), 1024):
            S = B[s:s + 1024] @ A.T
            out[s:s + 1024] = 1 - np.partition(S, -k, 1)[:, -k]
        return out

    return dist


def subsample(idx, labels, per_class):
    keep = []
    for c in sorted(set(labels[idx])):
        rows = idx[labels[idx] == c]
        keep.extend(rows if len(rows) <= per_class else rng.choice(rows, per_class, replace=False))
    return np.array(sorted(keep))


def rates(sv, so):
    return ' / '.join(f'{100 * np.mean(so > np.quantile(sv, 1 - f)):3.0f} %' for f in BUDGETS)


def union_rate(sv, so, budget):
    """Each score at the same quantile of the known validation cells, lowered until the union's false alarms
    reach the budget (as scores2.py). Returns the share of left-out cells flagged."""
    lo, hi = 0.0, budget
    for _ in range(30):
        q = (lo + hi) / 2
        fa = np.mean(np.any([a > np.quantile(a, 1 - q) for a in sv], 0))
        lo, hi = (lo, q) if fa > budget else (q, hi)
    return np.mean(np.any([b > np.quantile(a, 1 - lo) for a, b in zip(sv, so)], 0))


if __name__ == '__main__':
    for left in ['basophil', 'ig', 'erythroblast', 'platelet']:
        tr = (~val) & (lab != left)
        m, s = X[tr].mean(0), X[tr].std(0) + 1e-6
        Z = (X - m) / s
        ev, V = np.linalg.eigh(np.cov(Z[tr].T))
        V = V[:, ::-1]
        ood = (lab == left) & (src == 'pbc')
        va = val & (lab != left) & (src == 'pbc')
        trl = np.where(tr & (src == 'pbc'))[0]
        S = {}
        for dims in (2192, 256, 128, 64):
            P = Z if dims == 2192 else Z @ V[:, :dims]
            for per_class in (None, 300, 100):
                ref = trl if per_class is None else subsample(trl, lab, per_class)
                for k in (1, 5, 10):
                    dist = knn_ref(P[ref], k)
                    sv, so = dist(P[va]), dist(P[ood])
                    S[(dims, per_class, k)] = (sv, so)
                    print(f'{left:12s} dims {dims:4d} rows {len(ref):5d} k {k:2d}: {rates(sv, so)}', flush=True)
        known = sorted(set(lab[tr]))
        y = np.array([known.index(c) if c in known else -1 for c in lab])
        keys = np.char.add(lab[tr], src[tr])
        _, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
        sw = 1.0 / cnt[inv]
        dist = mahalanobis(Z[tr], lab[tr])
        mah = (dist(Z[va]), dist(Z[ood]))
        Pv, Po = [], []
        for cols in [slice(0, off[2]), slice(off[2], off[3]), slice(off[3], off[4])]:
            W, b = softmax_head(Z[tr][:, cols], y[tr], len(known), sw, steps=200)
            Pv.append(probs(Z[va][:, cols], W, b))
            Po.append(probs(Z[ood][:, cols], W, b))
        tv = lambda P: np.mean([0.5 * np.abs(P[a] - P[c]).sum(1) for a in range(3) for c in range(a + 1, 3)], 0)
        ens = (tv(Pv), tv(Po))
        print(f'{left:12s} mahalanobis: {rates(*mah)}   disagreement: {rates(*ens)}')
        print(f'{left:12s} mahalanobis+disagreement: ' +
              ' / '.join(f'{100 * union_rate([mah[0], ens[0]], [mah[1], ens[1]], f):3.0f} %' for f in BUDGETS))
        for key in [(2192, None, 10), (128, None, 10), (128, 300, 5), (64, 300, 5), (128, 100, 1)]:
            kn = S[key]
            print(f'{left:12s} mahalanobis+disagreement+knn{key}: ' +
                  ' / '.join(f'{100 * union_rate([mah[0], ens[0], kn[0]], [mah[1], ens[1], kn[1]], f):3.0f} %'
                             for f in BUDGETS) + '   disagreement+knn: ' +
                  ' / '.join(f'{100 * union_rate([ens[0], kn[0]], [ens[1], kn[1]], f):3.0f} %' for f in BUDGETS),
                  flush=True)
