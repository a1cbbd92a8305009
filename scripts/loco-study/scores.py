"""
Leave-one-class-out: how well post-hoc scores on frozen MobileNetV2 features flag a cell type the model never
learned. For each left-out class L (basophil, ig, erythroblast, platelet): fit on the training rows of the
other seven classes (both labs), set the threshold on their validation rows at a false-alarm rate, and
report the share of every PBC cell of L above it. Reads .cache/loco/features.{bin,json} (dump-features.ts), or
the folder LOCO names (LOCO=.cache/loco-ft: the bundled fine-tuned backbone's features).

Usage: python3 scripts/loco-study/scores.py    (numpy only; about 10 min on 2 quiet cores)
Scores:
  mahalanobis   distance to the nearest class centre, shared covariance (top 128 eigenvectors + one
                residual variance), as the product's unfamiliar_cell check (src/training/familiarity.ts)
  mahal/lab     the same with one centre per class and lab
  mahal/PBC     the same fitted on PBC's rows only
  msp           1 - top softmax probability of a class-balanced softmax head
  placeholder   p(other) of a head trained with an extra class of features mixed between two classes
  ensemble      disagreement (total variation) of three heads on different feature blocks
Thresholds: on the validation rows of both labs ('both') or of PBC alone ('PBC'; the left-out cells are
PBC's, and a per-lab threshold is what a product could apply to images its lab check places in PBC).
"""
import json
import os
import numpy as np

LOCO = os.environ.get('LOCO', '.cache/loco')

meta = json.load(open(os.path.join(LOCO, 'features.json')))
n, d = meta['n'], meta['d']
X = np.fromfile(os.path.join(LOCO, 'features.bin'), dtype=np.float32).reshape(n, d).astype(np.float64)
lab = np.array([r['label'] for r in meta['rows']])
src = np.array([r['source'] for r in meta['rows']])
val = np.array([r['val'] for r in meta['rows']]).astype(bool)
off = np.cumsum([0] + meta['dims'])
FPRS = (0.025, 0.05, 0.08, 0.10)
rng = np.random.default_rng(0)


def mahalanobis(Z, comp, rank=128):
    comps = sorted(set(comp))
    mu = np.stack([Z[comp == c].mean(0) for c in comps])
    R = np.concatenate([Z[comp == c] - mu[i] for i, c in enumerate(comps)])
    w = np.concatenate([np.full((comp == c).sum(), 1 / (comp == c).sum()) for c in comps])
    ev, V = np.linalg.eigh((R * w[:, None]).T @ R / len(comps))
    ev, V = ev[::-1], V[:, ::-1]
    res = max(ev[rank:].mean(), 1e-3 * ev.sum() / len(ev))
    Vk, ek = V[:, :rank], np.maximum(ev[:rank], res)
    muP, mu2 = mu @ Vk, (mu ** 2).sum(1)

    def dist(Q):
        P, q2, Qm = Q @ Vk, (Q ** 2).sum(1), Q @ mu.T
        best = np.full(len(Q), np.inf)
        for i in range(len(comps)):
            Pd = P - muP[i]
            pp = (Pd ** 2).sum(1)
            best = np.minimum(best, (Pd ** 2 / ek).sum(1) + (q2 - 2 * Qm[:, i] + mu2[i] - pp) / res)
        return np.sqrt(np.maximum(best, 0))

    return dist


def softmax_head(Z, y, k, sw, steps=300, lr=0.05, wd=1e-4):
    W, b = np.zeros((Z.shape[1], k)), np.zeros(k)
    Y, sw = np.eye(k)[y], sw / sw.sum()
    state = [(W, np.zeros_like(W), np.zeros_like(W)), (b, np.zeros(k), np.zeros(k))]
    for t in range(1, steps + 1):
        P = probs(Z, W, b)
        G = (P - Y) * sw[:, None]
        for (p, m, v), g in zip(state, (Z.T @ G + wd * W, G.sum(0))):
            m *= 0.9; m += 0.1 * g; v *= 0.999; v += 0.001 * g * g
            p -= lr * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    return W, b


def probs(Z, W, b):
    L = Z @ W + b
    L -= L.max(1, keepdims=True)
    P = np.exp(L)
    return P / P.sum(1, keepdims=True)


def report(name, left, s_val, s_ood, src_val):
    for where, ref in (('both', s_val), ('PBC', s_val[src_val == 'pbc'])):
        det = [np.mean(s_ood > np.quantile(ref, 1 - f)) for f in FPRS]
        print(f'{name:12s} {left:13s} thr {where:4s} flagged at 2.5/5/8/10 % false alarms: '
              + ' / '.join(f'{100 * v:3.0f} %' for v in det), flush=True)


if __name__ == '__main__':
    for left in ['basophil', 'ig', 'erythroblast', 'platelet']:
        tr, va, ood = (~val) & (lab != left), val & (lab != left), lab == left
        known = sorted(set(lab[tr]))
        y = np.array([known.index(c) if c in known else -1 for c in lab])
        m, s = X[tr].mean(0), X[tr].std(0) + 1e-6
        Z = (X - m) / s
        keys = np.char.add(lab[tr], src[tr])
        _, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
        sw = 1.0 / cnt[inv]
        k = len(known)

        dist = mahalanobis(Z[tr], lab[tr])
        report('mahalanobis', left, dist(Z[va]), dist(Z[ood]), src[va])
        dist = mahalanobis(Z[tr], np.char.add(np.char.add(lab[tr], '|'), src[tr]))
        report('mahal/lab', left, dist(Z[va]), dist(Z[ood]), src[va])
        trp = tr & (src == 'pbc')
        mp, sp = X[trp].mean(0), X[trp].std(0) + 1e-6
        dist = mahalanobis((X[trp] - mp) / sp, lab[trp])
        report('mahal/PBC', left, dist((X[va] - mp) / sp), dist((X[ood] - mp) / sp), src[va])

        W, b = softmax_head(Z[tr], y[tr], k, sw)
        report('msp', left, 1 - probs(Z[va], W, b).max(1), 1 - probs(Z[ood], W, b).max(1), src[va])

        # Placeholders: features mixed between two cells of different classes from the same lab, as class k.
        Ztr, ytr, srctr = Z[tr], y[tr], src[tr]
        i, j = rng.integers(0, len(Ztr), 3 * len(Ztr)), rng.integers(0, len(Ztr), 3 * len(Ztr))
        ok = (ytr[i] != ytr[j]) & (srctr[i] == srctr[j])
        i, j = i[ok][: len(Ztr)], j[ok][: len(Ztr)]
        lam = rng.uniform(0.3, 0.7, len(i))[:, None]
        Zmix = lam * Ztr[i] + (1 - lam) * Ztr[j]
        W, b = softmax_head(np.concatenate([Ztr, Zmix]), np.concatenate([ytr, np.full(len(Zmix), k)]), k + 1,
                            np.concatenate([sw, np.full(len(Zmix), sw.mean())]))
        report('placeholder', left, probs(Z[va], W, b)[:, -1], probs(Z[ood], W, b)[:, -1], src[va])

        heads = [slice(0, off[2]), slice(off[2], off[3]), slice(off[3], off[4])]
        Pv, Po = [], []
        for cols in heads:
            W, b = softmax_head(Ztr[:, cols], ytr, k, sw)
            Pv.append(probs(Z[va][:, cols], W, b))
            Po.append(probs(Z[ood][:, cols], W, b))
        tv = lambda P: np.mean([0.5 * np.abs(P[a] - P[c]).sum(1) for a in range(3) for c in range(a + 1, 3)], 0)
        report('ensemble', left, tv(Pv), tv(Po), src[va])
