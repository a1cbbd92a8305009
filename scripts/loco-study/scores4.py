"""
Leave-one-class-out, fourth round: two near-OOD scores from the literature on the same frozen features, for the
classes the product's checks miss most (basophils, immature granulocytes):
  relative Mahalanobis (Ren et al. 2021): the nearest class's Mahalanobis distance minus that to one Gaussian
      fitted on all training rows, which removes the directions in which every cell varies;
  predicted-class kNN: cosine distance to the k-th nearest training cell of the class the head predicts (a cell
      called monocyte that lies among no monocytes).
PBC thresholds (5 % / 10 % false alarms on PBC's known validation cells), as scores2.py and scores3.py.

Usage: python3 -u scripts/loco-study/scores4.py
"""
import sys
import numpy as np

sys.path.insert(0, 'scripts/loco-study')
from scores import X, lab, mahalanobis, probs, softmax_head, src, val  # noqa: E402
from scores3 import knn_ref, rates  # noqa: E402

if __name__ == '__main__':
    for left in ['basophil', 'ig', 'erythroblast', 'platelet']:
        tr = (~val) & (lab != left)
        m, s = X[tr].mean(0), X[tr].std(0) + 1e-6
        Z = (X - m) / s
        ood = (lab == left) & (src == 'pbc')
        va = val & (lab != left) & (src == 'pbc')
        dist = mahalanobis(Z[tr], lab[tr])
        d0 = mahalanobis(Z[tr], np.zeros(tr.sum(), dtype=int))
        mv, mo = dist(Z[va]), dist(Z[ood])
        print(f'{left:12s} mahalanobis {rates(mv, mo)}   relative {rates(mv ** 2 - d0(Z[va]) ** 2, mo ** 2 - d0(Z[ood]) ** 2)}',
              flush=True)
        known = sorted(set(lab[tr]))
        y = np.array([known.index(c) if c in known else -1 for c in lab])
        keys = np.char.add(lab[tr], src[tr])
        _, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
        W, b = softmax_head(Z[tr], y[tr], len(known), 1.0 / cnt[inv], steps=200)
        pv, po = probs(Z[va], W, b).argmax(1), probs(Z[ood], W, b).argmax(1)
        trp = np.where(tr & (src == 'pbc'))[0]
        for k in (1, 10):
            sv, so = np.empty(va.sum()), np.empty(ood.sum())
            for c in range(len(known)):
                ref = trp[y[trp] == c]
                if len(ref) < k:
                    continue
                f = knn_ref(Z[ref], k)
                if (pv == c).any():
                    sv[pv == c] = f(Z[va][pv == c])
                if (po == c).any():
                    so[po == c] = f(Z[ood][po == c])
            print(f'{left:12s} predicted-class kNN k {k:2d}: {rates(sv, so)}', flush=True)
