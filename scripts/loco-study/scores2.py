"""
Leave-one-class-out, second round: morphology features (dump-morphology.ts) and unions of scores under one
shared false-alarm budget. For each left-out class L: fit on the training rows of the other seven classes,
set thresholds on PBC's validation rows of the known classes, report the share of every PBC cell of L
flagged. A union of scores is thresholded so that, together, they flag the given share of known validation
cells (each score at the same quantile, raised until the union meets the budget).

Usage: python3 -u scripts/loco-study/scores2.py
"""
import json
import sys
import numpy as np

sys.path.insert(0, 'scripts/loco-study')
from scores import X, lab, mahalanobis, meta, n, off, probs, softmax_head, src, val  # noqa: E402

mm = json.load(open('.cache/loco/morph.json'))
M = np.fromfile('.cache/loco/morph.bin', dtype=np.float32).reshape(mm['n'], mm['d']).astype(np.float64)
assert mm['n'] == n, (mm['n'], n)
assert all(a['label'] == b['label'] and a['source'] == b['source'] for a, b in zip(meta['rows'], mm['rows']))
BUDGETS = (0.05, 0.10)
FOCUS = 'pbc'


def mahal_full(Z, comp, ridge=1e-3):
    comps = sorted(set(comp))
    mu = np.stack([Z[comp == c].mean(0) for c in comps])
    R = np.concatenate([Z[comp == c] - mu[i] for i, c in enumerate(comps)])
    C = R.T @ R / len(R)
    C += ridge * np.trace(C) / len(C) * np.eye(len(C))
    Ci = np.linalg.inv(C)

    def dist(Q):
        return np.min(np.stack([np.einsum('ij,jk,ik->i', Q - m, Ci, Q - m) for m in mu]), 0)

    return dist


def knn(Ztr, k=10):
    A = Ztr / np.linalg.norm(Ztr, axis=1, keepdims=True)

    def dist(Q):
        B = Q / np.linalg.norm(Q, axis=1, keepdims=True)
        out = np.empty(len(B))
        for s in range(0, len(B), 512):
            S = B[s:s + 512] @ A.T
            out[s:s + 512] = -np.sort(S, 1)[:, -k]
        return out

    return dist


def union_rate(sv, so, budget):
    """Each score at the same quantile q of the known validation cells; q lowered until the union's false
    alarms reach the budget. Returns the share of left-out cells flagged and the quantile."""
    lo, hi = 0.0, budget
    for _ in range(30):
        q = (lo + hi) / 2
        thr = [np.quantile(s, 1 - q) for s in sv]
        fa = np.mean(np.any([s > t for s, t in zip(sv, thr)], 0))
        if fa > budget:
            hi = q
        else:
            lo = q
    thr = [np.quantile(s, 1 - lo) for s in sv]
    return np.mean(np.any([s > t for s, t in zip(so, thr)], 0)), lo


if __name__ == '__main__':
    for left in ['basophil', 'ig', 'erythroblast', 'platelet']:
        tr, ood = (~val) & (lab != left), (lab == left) & (src == FOCUS)
        va = val & (lab != left) & (src == FOCUS)
        known = sorted(set(lab[tr]))
        y = np.array([known.index(c) if c in known else -1 for c in lab])
        m, s = X[tr].mean(0), X[tr].std(0) + 1e-6
        Z = (X - m) / s
        mm_, ms_ = M[tr].mean(0), M[tr].std(0) + 1e-6
        Zm = (M - mm_) / ms_
        keys = np.char.add(lab[tr], src[tr])
        _, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
        sw = 1.0 / cnt[inv]
        k = len(known)
        S = {}
        dist = mahalanobis(Z[tr], lab[tr])
        S['mahalanobis'] = (dist(Z[va]), dist(Z[ood]))
        dist = mahal_full(Zm[tr], np.char.add(np.char.add(lab[tr], '|'), src[tr]))
        S['morph/lab'] = (dist(Zm[va]), dist(Zm[ood]))
        dist = mahal_full(Zm[tr], lab[tr])
        S['morph'] = (dist(Zm[va]), dist(Zm[ood]))
        trp = tr & (src == FOCUS)
        dist = knn(Z[trp])
        S['knn/PBC'] = (dist(Z[va]), dist(Z[ood]))
        W, b = softmax_head(Z[tr], y[tr], k, sw, steps=200)
        S['msp'] = (1 - probs(Z[va], W, b).max(1), 1 - probs(Z[ood], W, b).max(1))
        heads = [slice(0, off[2]), slice(off[2], off[3]), slice(off[3], off[4])]
        Pv, Po = [], []
        for cols in heads:
            W, b = softmax_head(Z[tr][:, cols], y[tr], k, sw, steps=200)
            Pv.append(probs(Z[va][:, cols], W, b))
            Po.append(probs(Z[ood][:, cols], W, b))
        tv = lambda P: np.mean([0.5 * np.abs(P[a] - P[c]).sum(1) for a in range(3) for c in range(a + 1, 3)], 0)
        S['ensemble'] = (tv(Pv), tv(Po))
        # Morphology head + its disagreement with the full-feature head.
        Wm, bm = softmax_head(Zm[tr], y[tr], k, sw, steps=400)
        W, b = softmax_head(Z[tr], y[tr], k, sw, steps=200)
        pm = lambda Q, Qm: 0.5 * np.abs(probs(Q, W, b) - probs(Qm, Wm, bm)).sum(1)
        S['morph-vs-net'] = (pm(Z[va], Zm[va]), pm(Z[ood], Zm[ood]))
        for name, (sv, so) in S.items():
            line = [np.mean(so > np.quantile(sv, 1 - f)) for f in BUDGETS]
            print(f'{left:13s} {name:14s} ' + ' / '.join(f'{100 * v:3.0f} %' for v in line), flush=True)
        for combo in (('mahalanobis', 'msp'), ('ensemble', 'msp'), ('ensemble', 'morph'), ('ensemble', 'morph/lab'),
                      ('ensemble', 'morph', 'msp'), ('ensemble', 'morph-vs-net'), ('ensemble', 'morph-vs-net', 'morph'),
                      ('ensemble', 'morph', 'mahalanobis', 'msp'), ('ensemble', 'knn/PBC', 'morph')):
            out = [union_rate([S[c][0] for c in combo], [S[c][1] for c in combo], f) for f in BUDGETS]
            print(f'{left:13s} {"+".join(combo):40s} ' + ' / '.join(f'{100 * v:3.0f} %' for v, _ in out), flush=True)
