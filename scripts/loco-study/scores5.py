"""
Leave-one-class-out, fifth round: the product's cell check as it would be built, per lab. Scores: the
Mahalanobis distance (threshold pooled over both labs' validation cells at 97.5 %, as today), the block-head
disagreement (each lab's 95th percentile, as today) and a k-nearest-neighbour cosine distance in a 64-dimension
PCA of the standardized features to 300 training cells per class and lab (each lab's q-th percentile). Reports
each lab's share of its own known validation cells flagged (the cost) and the share of PBC's left-out cells
flagged (the gain), for the check as it is and with kNN added or replacing the Mahalanobis distance.

Usage: python3 -u scripts/loco-study/scores5.py
"""
import sys
import numpy as np

sys.path.insert(0, 'scripts/loco-study')
from scores import X, lab, mahalanobis, off, probs, softmax_head, src, val  # noqa: E402
from scores3 import knn_ref, subsample  # noqa: E402

LABS = ('pbc', 'kaggle-blood-cells')


def per_lab_flags(score, rows_src, thr):
    return np.array([score[i] > thr[s] for i, s in enumerate(rows_src)])


if __name__ == '__main__':
    for left in ['basophil', 'ig', 'erythroblast', 'platelet']:
        tr = (~val) & (lab != left)
        m, s = X[tr].mean(0), X[tr].std(0) + 1e-6
        Z = (X - m) / s
        ev, V = np.linalg.eigh(np.cov(Z[tr].T))
        P = Z @ V[:, ::-1][:, :64]
        ood = (lab == left) & (src == 'pbc')
        va = val & (lab != left)
        vsrc = src[va]
        dist = mahalanobis(Z[tr], lab[tr])
        mv, mo = dist(Z[va]), dist(Z[ood])
        mthr = np.quantile(mv, 0.975)
        known = sorted(set(lab[tr]))
        y = np.array([known.index(c) if c in known else -1 for c in lab])
        keys = np.char.add(lab[tr], src[tr])
        _, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
        Pv, Po = [], []
        for cols in [slice(0, off[2]), slice(off[2], off[3]), slice(off[3], off[4])]:
            W, b = softmax_head(Z[tr][:, cols], y[tr], len(known), 1.0 / cnt[inv], steps=200)
            Pv.append(probs(Z[va][:, cols], W, b))
            Po.append(probs(Z[ood][:, cols], W, b))
        tv = lambda Q: np.mean([0.5 * np.abs(Q[a] - Q[c]).sum(1) for a in range(3) for c in range(a + 1, 3)], 0)
        dv, do = tv(Pv), tv(Po)
        dthr = {l: np.quantile(dv[vsrc == l], 0.95) for l in LABS}
        # kNN: one reference of both labs' rows; each lab's threshold from its own validation cells.
        ref = subsample(np.where(tr)[0], np.char.add(lab, src), 300)
        f = knn_ref(P[ref], 5)
        kv, ko = f(P[va]), f(P[ood])
        flags = {
            'mahalanobis': (mv > mthr, mo > mthr),
            'disagreement': (per_lab_flags(dv, vsrc, dthr), do > dthr['pbc']),
        }
        for q in (0.95, 0.975):
            kthr = {l: np.quantile(kv[vsrc == l], q) for l in LABS}
            flags[f'knn{q}'] = (per_lab_flags(kv, vsrc, kthr), ko > kthr['pbc'])
        combos = [('mahalanobis', 'disagreement'), ('mahalanobis', 'disagreement', 'knn0.975'),
                  ('mahalanobis', 'disagreement', 'knn0.95'), ('disagreement', 'knn0.95'),
                  ('disagreement', 'knn0.975'), ('knn0.95',), ('knn0.975',)]
        for combo in combos:
            fv = np.any([flags[c][0] for c in combo], 0)
            fo = np.any([flags[c][1] for c in combo], 0)
            cost = '  '.join(f'{l} {100 * fv[vsrc == l].mean():4.1f} %' for l in LABS)
            print(f'{left:12s} {"+".join(combo):36s} known flagged: {cost}   left-out flagged {100 * fo.mean():3.0f} %',
                  flush=True)
