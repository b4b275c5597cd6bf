#!/usr/bin/env python3
"""Derives the Winograd F(m, 3) transforms of src/ops/winograd.c (m = 4, 5, 6) in exact fractions and prints
them as its C tables (BT, AT), then checks each by the identity they must satisfy.

Toom-Cook with the interpolation points 0, 1, -1, 2, -2, 1/2, -1/2 (the first m + 1) and infinity, in the
convention of Lavin's wincnn: Aᵀ[i][j] = p_j^i (the infinity column: 1 in the last row only); G's row for a
finite point p is (1, p, p²) / Π_{q≠p}(p − q), (0, 0, 1) for infinity (winograd.c computes G itself, in
double). Bᵀ is then the unique matrix with Aᵀ[(G g) ⊙ (Bᵀ d)] = the correlation of d with g for every d and
g: for each column l of Bᵀ, Σ_j Aᵀ[i][j] G[j][k] Bᵀ[j][l] = [l == i + k], solved exactly. m = 4 gives Lavin
and Gray's matrices. Uses the standard library only: python3 scripts/winograd_matrices.py
"""
from fractions import Fraction as Fr

POINTS = [Fr(0), Fr(1), Fr(-1), Fr(2), Fr(-2), Fr(1, 2), Fr(-1, 2)]
R = 3  # kernel taps


def transforms(m, stride=1):
    """Aᵀ, G, Bᵀ of the correlation y_i = Σ_k g_k x_{stride·i + k}, i < m, k < 3. Stride 1: Toom-Cook on all three
    taps, n = m + 2 positions. Stride 2: the even input samples meet (g0, g2) in Toom-Cook F(m, 2) (m + 1
    positions: m finite points and infinity), the odd ones g1 alone (m positions, the identity): n = 2m + 1."""
    if stride == 1:
        pts, taps = POINTS[: m + 1], [0, 1, 2]
    else:
        pts, taps = POINTS[:m], [0, 2]
    ne = len(pts) + 1  # Toom-Cook positions: the finite points and infinity
    n = ne if stride == 1 else ne + m
    at = [[p**i for p in pts] + [Fr(int(i == m - 1))] for i in range(m)]
    g = []
    for j, p in enumerate(pts):
        f = Fr(1)
        for l, q in enumerate(pts):
            if l != j:
                f *= p - q
        row = [Fr(0)] * R
        for e, k in enumerate(taps):
            row[k] = p**e / f
        g.append(row)
    g.append([Fr(int(k == taps[-1])) for k in range(R)])
    if stride == 2:  # the odd samples: y_i += g1 · x_{2i+1}
        for i in range(m):
            at[i] += [Fr(int(i == j)) for j in range(m)]
        g += [[Fr(0), Fr(1), Fr(0)] for _ in range(m)]
    bt = [[Fr(0)] * n for _ in range(n)]
    for l in range(n):
        # rows (i, k) of the system in the unknowns Bᵀ[0..n-1][l], eliminated exactly
        rows = [[at[i][j] * g[j][k] for j in range(n)] + [Fr(int(l == stride * i + k))] for i in range(m)
                for k in range(R)]
        pivots = []
        for c in range(n):
            r = next(q for q in range(len(pivots), len(rows)) if rows[q][c] != 0)
            top = len(pivots)
            rows[top], rows[r] = rows[r], rows[top]
            rows[top] = [x / rows[top][c] for x in rows[top]]
            for q in range(len(rows)):
                if q != top and rows[q][c] != 0:
                    rows[q] = [a - rows[q][c] * b for a, b in zip(rows[q], rows[top])]
            pivots.append(c)
        assert all(row[n] == 0 for row in rows[n:]), "inconsistent system"
        for idx, c in enumerate(pivots):
            bt[c][l] = rows[idx][n]
    return at, g, bt


def check(m, stride, at, g, bt):
    """the identity on the basis: every d = e_l, g = e_k"""
    n = len(bt)
    for l in range(n):
        for k in range(R):
            for i in range(m):
                got = sum(at[i][j] * g[j][k] * bt[j][l] for j in range(n))
                assert got == int(l == stride * i + k), (m, stride, i, k, l)


def c_literal(x):
    return str(x.numerator) if x.denominator == 1 else repr(float(x)) + "f"


def c_table(name, t):
    return "static const float %s[%d][%d] = {%s};" % (
        name, len(t), len(t[0]), ", ".join("{" + ", ".join(c_literal(x) for x in row) + "}" for row in t))


if __name__ == "__main__":
    for stride, ms in ((1, (4, 5, 6)), (2, (2, 4))):
        for m in ms:
            at, g, bt = transforms(m, stride)
            check(m, stride, at, g, bt)
            name = "%d" % m if stride == 1 else "%d_S2" % m
            print(c_table("BT" + name, bt))
            print(c_table("AT" + name, at))
