/* The C kernels of the extension aeot.ot._native_ext, compiled once per variant.
 *
 * _native_ext.c includes this file for the baseline variant (the compiler's default
 * target: SSE2 on x86-64); on x86, _native_avx2.c and _native_avx512.c include it again,
 * compiled with -mavx2 -mfma and with AVX-512 as well (setup.py), and so also get the
 * fused kernels. Each includer names its table AEOT_TABLE and its variant AEOT_VARIANT;
 * the kernels are static, so the copies never clash, and the extension calls the table
 * it picks at import.
 *
 * Row reductions for the semi-discrete OT inner loop.
 *
 * The score matrix S (rows = samples, cols = targets, row-major, leading
 * dimension ld) comes from a BLAS GEMM. Torch's value+index reduction over it is
 * not vectorised; these kernels are. Each row is scanned in blocks of BLK
 * columns: a vectorised max per block, the best block(s) kept, and only the
 * winning block is searched for its index.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The kernels of one variant; the fused ones are NULL where compiled without AVX2 + FMA. */
typedef struct {
  const char* name;
  void (*argmax_rows_f32)(const float*, int64_t, int64_t, int64_t, int64_t*, float*);
  void (*argmax_rows_f64)(const double*, int64_t, int64_t, int64_t, int64_t*, double*);
  void (*top2_rows_f32)(const float*, int64_t, int64_t, int64_t, int64_t*, float*);
  void (*top2_rows_f64)(const double*, int64_t, int64_t, int64_t, int64_t*, double*);
  void (*gather_dot_f32)(const float*, int64_t, int64_t, const float*, const int32_t*,
                         int64_t, float*);
  void (*gather_dot_f64)(const double*, int64_t, int64_t, const double*, const int32_t*,
                         int64_t, double*);
  void (*cand_top2_f32)(const float*, const int32_t*, int64_t, int64_t, const float*,
                        const uint8_t*, int64_t*, float*);
  void (*cand_top2_f64)(const double*, const int32_t*, int64_t, int64_t, const double*,
                        const uint8_t*, int64_t*, double*);
  int64_t (*lawson_flips)(const double*, const double*, const double*, const double*,
                          int64_t*, int64_t*, const int64_t*, int64_t, int64_t, int64_t);
  int64_t (*warm_edges)(const double*, const double*, const double*, const double*,
                        const int64_t*,
                        const int64_t*, int64_t, const double*, const double*, double*,
                        int64_t*, int64_t*, double*, double*, uint8_t*, double*, double*);
  int64_t (*sweep_triangulate)(const double*, const double*, const double*, const double*,
                               int64_t, int64_t*, int64_t*);
  double (*lse_dense_f64)(const double*, int64_t, int64_t, int64_t, const double*,
                          const double*, double, double*, double*);
  double (*lse_csr_f64)(const double*, const int64_t*, const double*, const int64_t*, int64_t,
                        const double*, double, double*, double*);
  int64_t (*active_count_f64)(const double*, int64_t, int64_t, int64_t, const double*, double,
                              double*, double*, int64_t*);
  int64_t (*active_fill_f64)(const double*, int64_t, int64_t, int64_t, const double*,
                             const double*, double, const int64_t*, int64_t*, double*);
  void (*ctransform_dot_f64)(const double*, int64_t, int64_t, int64_t, const double*,
                             const double*, double*, double*);
  void (*fused_argmax_f32)(const float*, int64_t, int64_t, int64_t, const float*,
                           const float*, int64_t, int64_t*, float*);
  void (*fused_top2_f32)(const float*, int64_t, int64_t, int64_t, const float*, const float*,
                         int64_t, int64_t*, float*);
  void (*fused_topk_f32)(const float*, int64_t, int64_t, int64_t, const float*, const float*,
                         int64_t, int64_t, int64_t*, float*);
  void (*fused_lift_f32)(const float*, int64_t, int64_t, int64_t, const float*, const float*,
                         int64_t, float*, double*, double*);
} aeot_kernels;

#define BLK 64

#define DEFINE_KERNELS(T, SUFFIX)                                                        \
static void argmax_rows_##SUFFIX(const T* s, int64_t rows, int64_t cols, int64_t ld,     \
                          int64_t* idx, T* val) {                                        \
  for (int64_t r = 0; r < rows; ++r) {                                                   \
    const T* row = s + r * ld;                                                           \
    T best = row[0];                                                                     \
    int64_t best_block = 0, c0 = 0;                                                      \
    for (; c0 + BLK <= cols; c0 += BLK) {                                                \
      T m = row[c0];                                                                     \
      for (int j = 1; j < BLK; ++j) { T v = row[c0 + j]; m = v > m ? v : m; }            \
      if (m > best) { best = m; best_block = c0; }                                       \
    }                                                                                    \
    int64_t bi = 0; T bv = row[0];                                                       \
    int64_t stop = best_block + BLK < cols ? best_block + BLK : cols;                    \
    for (int64_t j = best_block; j < stop; ++j) if (row[j] > bv) { bv = row[j]; bi = j; } \
    for (int64_t j = c0; j < cols; ++j) if (row[j] > bv) { bv = row[j]; bi = j; }        \
    idx[r] = bi; val[r] = bv;                                                            \
  }                                                                                      \
}                                                                                        \
                                                                                         \
static void top2_rows_##SUFFIX(const T* s, int64_t rows, int64_t cols, int64_t ld,       \
                        int64_t* idx, T* val) {                                          \
  for (int64_t r = 0; r < rows; ++r) {                                                   \
    const T* row = s + r * ld;                                                           \
    /* best two block maxima; the runner-up overall is the second of the best        */  \
    /* block or the maximum of the second block                                      */  \
    T m1 = row[0], m2 = row[0];                                                          \
    int64_t b1 = -1, b2 = -1, c0 = 0;                                                    \
    for (; c0 + BLK <= cols; c0 += BLK) {                                                \
      T m = row[c0];                                                                     \
      for (int j = 1; j < BLK; ++j) { T v = row[c0 + j]; m = v > m ? v : m; }            \
      if (b1 < 0 || m > m1) { m2 = m1; b2 = b1; m1 = m; b1 = c0; }                       \
      else if (b2 < 0 || m > m2) { m2 = m; b2 = c0; }                                    \
    }                                                                                    \
    int64_t i1 = -1, i2 = -1; T v1 = 0, v2 = 0;                                          \
    for (int pass = 0; pass < 3; ++pass) {                                               \
      int64_t lo, hi;                                                                    \
      if (pass == 0) { if (b1 < 0) continue; lo = b1; hi = b1 + BLK; }                   \
      else if (pass == 1) { if (b2 < 0) continue; lo = b2; hi = b2 + BLK; }              \
      else { lo = c0; hi = cols; }                                                       \
      for (int64_t j = lo; j < hi; ++j) {                                                \
        T v = row[j];                                                                    \
        if (i1 < 0 || v > v1) { v2 = v1; i2 = i1; v1 = v; i1 = j; }                      \
        else if (i2 < 0 || v > v2) { v2 = v; i2 = j; }                                   \
      }                                                                                  \
    }                                                                                    \
    idx[2 * r] = i1; val[2 * r] = v1;                                                    \
    idx[2 * r + 1] = i2; val[2 * r + 1] = v2;                                            \
  }                                                                                      \
}

DEFINE_KERNELS(float, f32)
DEFINE_KERNELS(double, f64)

/* Kernels of the sample pool (montecarlo._SamplePool), for K cached cells per row.
 *
 * gather_dot: raw[r, l] = Σ_k x[r, k] y[cells[r, l], k], in k order with eight
 * partial sums (p = k mod 8) added pairwise at the end, so a value depends on x[r]
 * and y[cells[r, l]] alone: re-computing it after a resume gives the same bits.
 *
 * cand_top2: the best two of raw[r, l] + h[cells[r, l]] over the columns l whose cell
 * is not marked in `skip` (N bytes), best first; strictly greater wins, so ties keep
 * the lower column. A row with fewer than two such columns gets index -1 and the
 * lowest value of the type in the missing slots. */
#define DEFINE_POOL_KERNELS(T, SUFFIX, LOWEST)                                           \
static void gather_dot_##SUFFIX(const T* x, int64_t rows, int64_t d, const T* y,        \
                         const int32_t* cells, int64_t k, T* raw) {                      \
  for (int64_t r = 0; r < rows; ++r) {                                                   \
    const T* xr = x + r * d;                                                             \
    for (int64_t l = 0; l < k; ++l) {                                                    \
      const T* yc = y + (int64_t)cells[r * k + l] * d;                                   \
      T p[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                 \
      int64_t j = 0;                                                                     \
      for (; j + 8 <= d; j += 8)                                                         \
        for (int q = 0; q < 8; ++q) p[q] += xr[j + q] * yc[j + q];                       \
      for (int q = 0; j < d; ++j, ++q) p[q] += xr[j] * yc[j];                            \
      raw[r * k + l] = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7])); \
    }                                                                                    \
  }                                                                                      \
}                                                                                        \
                                                                                         \
static void cand_top2_##SUFFIX(const T* raw, const int32_t* cells, int64_t rows,        \
                               int64_t k, const T* h, const uint8_t* skip, int64_t* idx, \
                               T* val) {                                                 \
  for (int64_t r = 0; r < rows; ++r) {                                                   \
    int64_t i1 = -1, i2 = -1; T v1 = LOWEST, v2 = LOWEST;                                \
    for (int64_t l = 0; l < k; ++l) {                                                    \
      const int32_t c = cells[r * k + l];                                                \
      if (skip[c]) continue;                                                             \
      const T v = raw[r * k + l] + h[c];                                                 \
      if (i1 < 0 || v > v1) { v2 = v1; i2 = i1; v1 = v; i1 = c; }                        \
      else if (i2 < 0 || v > v2) { v2 = v; i2 = c; }                                     \
    }                                                                                    \
    idx[2 * r] = i1; val[2 * r] = v1; idx[2 * r + 1] = i2; val[2 * r + 1] = v2;          \
  }                                                                                      \
}

DEFINE_POOL_KERNELS(float, f32, -3.402823466e+38F)
DEFINE_POOL_KERNELS(double, f64, -1.7976931348623157e+308)

/* Fused scores and row reductions for few dimensions (AVX2 + FMA, float32).
 *
 * For small d the GEMM is bound by writing its (rows, N) output, and the row scan
 * reads it back: both cost more than the d multiply-adds per score. Here the
 * scores s_j(x) = h_j + Σ_k x_k y_jk are formed in registers, eight targets per
 * vector (targets padded to npad, a multiple of 8, and packed in panels: yt is
 * (npad / 8, d, 8), so the d vectors of one group of eight targets are contiguous
 * and a row-major (d, npad) layout's 4 KiB-aliasing strides never occur; padded
 * heights -FLT_MAX), and reduced on the spot: each vector lane keeps the
 * best score seen and its target index (strictly greater wins, so ties keep the
 * lower index), and the eight lanes are merged at the end. Each score is the same
 * fma chain whatever the blocking, so any split of rows or targets gives the same
 * bits. Targets are taken in blocks of TB that stay in the L2 cache, the running
 * lane state of each row kept in `state` between blocks.
 */
#if defined(__AVX2__) && defined(__FMA__)
#define AEOT_FUSED 1
#include <float.h>
#include <immintrin.h>

#ifndef WIDE_MIN_DIM
#define WIDE_MIN_DIM 16 /* the argmax kernel takes 16 targets at a time from this d on */
#endif
#define RB 256 /* rows per pass over the targets: their lane state stays in L1 */

/* targets per block: tb·d floats of yt, about 256 KiB (within L2) */
static inline int64_t target_block(int64_t d) {
  int64_t tb = (65536 / (d > 0 ? d : 1)) & ~(int64_t)7;
  return tb < 64 ? 64 : tb;
}

static inline void lanes_argmax(__m256 v, __m256i i, int64_t* idx, float* val) {
  float vs[8]; int32_t is[8];
  _mm256_storeu_ps(vs, v); _mm256_storeu_si256((__m256i*)is, i);
  float bv = vs[0]; int32_t bi = is[0];
  for (int l = 1; l < 8; ++l)
    if (vs[l] > bv || (vs[l] == bv && is[l] < bi)) { bv = vs[l]; bi = is[l]; }
  *idx = bi; *val = bv;
}

#define SCORE(acc, xr, yk, k) acc = _mm256_fmadd_ps(_mm256_broadcast_ss((xr) + (k)), yk, acc)

/* Score tiles shared by the argmax and top-2 kernels: rows x, x + ldx, x + 2 ldx,
 * x + 3 ldx against the panel of eight targets at yk (d × 8 floats, heights hv) or
 * two consecutive panels, each score one fma chain from its height. */
#define TILE_ALWAYS_INLINE static inline __attribute__((always_inline))
TILE_ALWAYS_INLINE void tile_4x8(const float* x, int64_t ldx, const float* yk, __m256 hv,
                                 int64_t d, __m256 a[4]) {
  const float *x0 = x, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
  __m256 a0 = hv, a1 = hv, a2 = hv, a3 = hv;
  for (int64_t k = 0; k < d; ++k, yk += 8) {
    __m256 yv = _mm256_loadu_ps(yk);
    SCORE(a0, x0, yv, k); SCORE(a1, x1, yv, k); SCORE(a2, x2, yv, k); SCORE(a3, x3, yv, k);
  }
  a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
}

/* eight independent fma chains keep both fma ports busy (four chains of latency 4
 * fill only half of them) */
TILE_ALWAYS_INLINE void tile_4x16(const float* x, int64_t ldx, const float* yk,
                                  const float* h, int64_t d, __m256 a[4], __m256 c[4]) {
  const float *x0 = x, *x1 = x0 + ldx, *x2 = x1 + ldx, *x3 = x2 + ldx;
  __m256 hv = _mm256_loadu_ps(h), hw = _mm256_loadu_ps(h + 8);
  __m256 a0 = hv, a1 = hv, a2 = hv, a3 = hv;
  __m256 c0 = hw, c1 = hw, c2 = hw, c3 = hw;
  const float* zk = yk + 8 * d;
  for (int64_t k = 0; k < d; ++k, yk += 8, zk += 8) {
    __m256 yv = _mm256_loadu_ps(yk), zv = _mm256_loadu_ps(zk);
    __m256 xb;
    xb = _mm256_broadcast_ss(x0 + k); a0 = _mm256_fmadd_ps(xb, yv, a0); c0 = _mm256_fmadd_ps(xb, zv, c0);
    xb = _mm256_broadcast_ss(x1 + k); a1 = _mm256_fmadd_ps(xb, yv, a1); c1 = _mm256_fmadd_ps(xb, zv, c1);
    xb = _mm256_broadcast_ss(x2 + k); a2 = _mm256_fmadd_ps(xb, yv, a2); c2 = _mm256_fmadd_ps(xb, zv, c2);
    xb = _mm256_broadcast_ss(x3 + k); a3 = _mm256_fmadd_ps(xb, yv, a3); c3 = _mm256_fmadd_ps(xb, zv, c3);
  }
  a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
  c[0] = c0; c[1] = c1; c[2] = c2; c[3] = c3;
}
#define KEEP(acc, best, bidx, jv) do {                                                   \
    __m256 gt_ = _mm256_cmp_ps(acc, best, _CMP_GT_OQ);                                   \
    best = _mm256_blendv_ps(best, acc, gt_);                                             \
    bidx = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(bidx),               \
                                                _mm256_castsi256_ps(jv), gt_));          \
  } while (0)

/* rows of x (rows, d), leading dimension ldx; state: rows × 16 floats scratch */
static void argmax_pass(const float* x, int64_t rows, int64_t d, int64_t ldx,
                        const float* yt, const float* h, int64_t npad,
                        int64_t* idx, float* val, float* state) {
  const int64_t TB = target_block(d);
  const __m256i eight = _mm256_set1_epi32(8);
  for (int64_t r = 0; r < rows; ++r) {
    _mm256_storeu_ps(state + 16 * r, _mm256_set1_ps(-FLT_MAX));
    _mm256_storeu_si256((__m256i*)(state + 16 * r + 8), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  for (int64_t j0 = 0; j0 < npad; j0 += TB) {
    int64_t j1 = j0 + TB < npad ? j0 + TB : npad;
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
      const float* x0 = x + r * ldx;
      float* st = state + 16 * r;
      __m256 b0 = _mm256_loadu_ps(st), b1 = _mm256_loadu_ps(st + 16);
      __m256 b2 = _mm256_loadu_ps(st + 32), b3 = _mm256_loadu_ps(st + 48);
      __m256i i0 = _mm256_loadu_si256((const __m256i*)(st + 8));
      __m256i i1 = _mm256_loadu_si256((const __m256i*)(st + 24));
      __m256i i2 = _mm256_loadu_si256((const __m256i*)(st + 40));
      __m256i i3 = _mm256_loadu_si256((const __m256i*)(st + 56));
      __m256i jv = _mm256_add_epi32(_mm256_set1_epi32((int32_t)j0),
                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      int64_t j = j0;
      /* two panels at a time where d is large enough to pay for the state traffic */
      for (; d >= WIDE_MIN_DIM && j + 16 <= j1; j += 16) {
        __m256 a[4], c[4];
        tile_4x16(x0, ldx, yt + j * d, h + j, d, a, c);
        KEEP(a[0], b0, i0, jv); KEEP(a[1], b1, i1, jv); KEEP(a[2], b2, i2, jv); KEEP(a[3], b3, i3, jv);
        jv = _mm256_add_epi32(jv, eight);
        KEEP(c[0], b0, i0, jv); KEEP(c[1], b1, i1, jv); KEEP(c[2], b2, i2, jv); KEEP(c[3], b3, i3, jv);
        jv = _mm256_add_epi32(jv, eight);
      }
      for (; j < j1; j += 8) {
        __m256 a[4];
        tile_4x8(x0, ldx, yt + j * d, _mm256_loadu_ps(h + j), d, a);
        KEEP(a[0], b0, i0, jv); KEEP(a[1], b1, i1, jv); KEEP(a[2], b2, i2, jv); KEEP(a[3], b3, i3, jv);
        jv = _mm256_add_epi32(jv, eight);
      }
      _mm256_storeu_ps(st, b0); _mm256_storeu_ps(st + 16, b1);
      _mm256_storeu_ps(st + 32, b2); _mm256_storeu_ps(st + 48, b3);
      _mm256_storeu_si256((__m256i*)(st + 8), i0); _mm256_storeu_si256((__m256i*)(st + 24), i1);
      _mm256_storeu_si256((__m256i*)(st + 40), i2); _mm256_storeu_si256((__m256i*)(st + 56), i3);
    }
    for (; r < rows; ++r) {
      const float* x0 = x + r * ldx;
      float* st = state + 16 * r;
      __m256 b0 = _mm256_loadu_ps(st);
      __m256i i0 = _mm256_loadu_si256((const __m256i*)(st + 8));
      __m256i jv = _mm256_add_epi32(_mm256_set1_epi32((int32_t)j0),
                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      for (int64_t j = j0; j < j1; j += 8) {
        __m256 a0 = _mm256_loadu_ps(h + j);
        const float* yk = yt + j * d;
        for (int64_t k = 0; k < d; ++k, yk += 8) SCORE(a0, x0, _mm256_loadu_ps(yk), k);
        KEEP(a0, b0, i0, jv);
        jv = _mm256_add_epi32(jv, eight);
      }
      _mm256_storeu_ps(st, b0);
      _mm256_storeu_si256((__m256i*)(st + 8), i0);
    }
  }
  for (int64_t r = 0; r < rows; ++r)
    lanes_argmax(_mm256_loadu_ps(state + 16 * r),
                 _mm256_loadu_si256((const __m256i*)(state + 16 * r + 8)), idx + r, val + r);
}

/* The two best targets per row, best first, into idx/val (rows, 2); state: rows × 32 floats.
 * Per lane: (v1, i1) the best, (v2, i2) the runner-up; a new score s replaces the
 * runner-up when s > v2, and is promoted when s > v1. */
#define KEEP2(acc, v1, i1, v2, i2, jv) do {                                               \
    __m256 g1_ = _mm256_cmp_ps(acc, v1, _CMP_GT_OQ);                                     \
    __m256 g2_ = _mm256_cmp_ps(acc, v2, _CMP_GT_OQ);                                     \
    __m256 nv2_ = _mm256_blendv_ps(_mm256_blendv_ps(v2, acc, g2_), v1, g1_);            \
    __m256 ni2_ = _mm256_blendv_ps(_mm256_blendv_ps(_mm256_castsi256_ps(i2),              \
                                   _mm256_castsi256_ps(jv), g2_), _mm256_castsi256_ps(i1), g1_); \
    v1 = _mm256_blendv_ps(v1, acc, g1_);                                                 \
    i1 = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(i1),                   \
                                              _mm256_castsi256_ps(jv), g1_));            \
    v2 = nv2_; i2 = _mm256_castps_si256(ni2_);                                           \
  } while (0)

/* KEEP2 on the lane state st (v1[8], i1[8], v2[8], i2[8]) in memory */
#define KEEP2_MEM(acc, st, jv) do {                                                       \
    __m256 v1_ = _mm256_loadu_ps(st), v2_ = _mm256_loadu_ps((st) + 16);                   \
    __m256i i1_ = _mm256_loadu_si256((const __m256i*)((st) + 8));                         \
    __m256i i2_ = _mm256_loadu_si256((const __m256i*)((st) + 24));                        \
    KEEP2(acc, v1_, i1_, v2_, i2_, jv);                                                   \
    _mm256_storeu_ps(st, v1_); _mm256_storeu_ps((st) + 16, v2_);                          \
    _mm256_storeu_si256((__m256i*)((st) + 8), i1_);                                       \
    _mm256_storeu_si256((__m256i*)((st) + 24), i2_);                                      \
  } while (0)

static void lanes_top2(const float* st, int64_t* idx, float* val) {
  /* st: v1[8], i1[8], v2[8], i2[8]; candidates ordered by (value desc, index asc) */
  const int32_t* is = (const int32_t*)st;
  float bv = -FLT_MAX, sv = -FLT_MAX; int32_t bi = -1, si = -1;
  for (int c = 0; c < 16; ++c) {
    int lane = c & 7, second = c >> 3;
    float v = st[lane + 16 * second]; int32_t i = is[8 + lane + 16 * second];
    if (i < 0) continue;
    if (bi < 0 || v > bv || (v == bv && i < bi)) { sv = bv; si = bi; bv = v; bi = i; }
    else if (si < 0 || v > sv || (v == sv && i < si)) { sv = v; si = i; }
  }
  idx[0] = bi; val[0] = bv; idx[1] = si; val[1] = sv;
}

static void top2_pass(const float* x, int64_t rows, int64_t d, int64_t ldx,
                      const float* yt, const float* h, int64_t npad,
                      int64_t* idx, float* val, float* state) {
  const int64_t TB = target_block(d);
  const __m256i eight = _mm256_set1_epi32(8);
  for (int64_t r = 0; r < rows; ++r) {
    float* st = state + 32 * r;
    _mm256_storeu_ps(st, _mm256_set1_ps(-FLT_MAX));
    _mm256_storeu_si256((__m256i*)(st + 8), _mm256_set1_epi32(-1));
    _mm256_storeu_ps(st + 16, _mm256_set1_ps(-FLT_MAX));
    _mm256_storeu_si256((__m256i*)(st + 24), _mm256_set1_epi32(-1));
  }
  for (int64_t j0 = 0; j0 < npad; j0 += TB) {
    int64_t j1 = j0 + TB < npad ? j0 + TB : npad;
    int64_t r = 0;
    /* four rows and up to sixteen targets at a time (eight fma chains), the lane
     * state kept in L1 and updated once per group of eight targets */
    for (; d >= WIDE_MIN_DIM && r + 4 <= rows; r += 4) {
      const float* x0 = x + r * ldx;
      float* st = state + 32 * r;
      __m256i jv = _mm256_add_epi32(_mm256_set1_epi32((int32_t)j0),
                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      int64_t j = j0;
      for (; j + 16 <= j1; j += 16) {
        __m256 a[4], c[4];
        tile_4x16(x0, ldx, yt + j * d, h + j, d, a, c);
        KEEP2_MEM(a[0], st, jv); KEEP2_MEM(a[1], st + 32, jv);
        KEEP2_MEM(a[2], st + 64, jv); KEEP2_MEM(a[3], st + 96, jv);
        jv = _mm256_add_epi32(jv, eight);
        KEEP2_MEM(c[0], st, jv); KEEP2_MEM(c[1], st + 32, jv);
        KEEP2_MEM(c[2], st + 64, jv); KEEP2_MEM(c[3], st + 96, jv);
        jv = _mm256_add_epi32(jv, eight);
      }
      for (; j < j1; j += 8) {
        __m256 a[4];
        tile_4x8(x0, ldx, yt + j * d, _mm256_loadu_ps(h + j), d, a);
        KEEP2_MEM(a[0], st, jv); KEEP2_MEM(a[1], st + 32, jv);
        KEEP2_MEM(a[2], st + 64, jv); KEEP2_MEM(a[3], st + 96, jv);
        jv = _mm256_add_epi32(jv, eight);
      }
    }
    for (; r < rows; r += 2) {
      int two = r + 1 < rows;
      const float* x0 = x + r * ldx;
      const float* x1 = two ? x0 + ldx : x0;
      float* s0 = state + 32 * r;
      float* s1 = two ? s0 + 32 : s0;
      __m256 v10 = _mm256_loadu_ps(s0), v20 = _mm256_loadu_ps(s0 + 16);
      __m256i i10 = _mm256_loadu_si256((const __m256i*)(s0 + 8));
      __m256i i20 = _mm256_loadu_si256((const __m256i*)(s0 + 24));
      __m256 v11 = _mm256_loadu_ps(s1), v21 = _mm256_loadu_ps(s1 + 16);
      __m256i i11 = _mm256_loadu_si256((const __m256i*)(s1 + 8));
      __m256i i21 = _mm256_loadu_si256((const __m256i*)(s1 + 24));
      __m256i jv = _mm256_add_epi32(_mm256_set1_epi32((int32_t)j0),
                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      for (int64_t j = j0; j < j1; j += 8) {
        __m256 hv = _mm256_loadu_ps(h + j);
        __m256 a0 = hv, a1 = hv;
        const float* yk = yt + j * d;
        for (int64_t k = 0; k < d; ++k, yk += 8) {
          __m256 yv = _mm256_loadu_ps(yk);
          SCORE(a0, x0, yv, k); SCORE(a1, x1, yv, k);
        }
        KEEP2(a0, v10, i10, v20, i20, jv);
        KEEP2(a1, v11, i11, v21, i21, jv);
        jv = _mm256_add_epi32(jv, eight);
      }
      /* write the second row first: with one row left, s1 == s0 and row 0 must win */
      _mm256_storeu_ps(s1, v11); _mm256_storeu_ps(s1 + 16, v21);
      _mm256_storeu_si256((__m256i*)(s1 + 8), i11); _mm256_storeu_si256((__m256i*)(s1 + 24), i21);
      _mm256_storeu_ps(s0, v10); _mm256_storeu_ps(s0 + 16, v20);
      _mm256_storeu_si256((__m256i*)(s0 + 8), i10); _mm256_storeu_si256((__m256i*)(s0 + 24), i20);
    }
  }
  for (int64_t r = 0; r < rows; ++r) lanes_top2(state + 32 * r, idx + 2 * r, val + 2 * r);
}
static void fused_argmax_f32(const float* x, int64_t rows, int64_t d, int64_t ldx,
                             const float* yt, const float* h, int64_t npad, int64_t* idx,
                             float* val) {
  float state[16 * RB] __attribute__((aligned(32)));
  for (int64_t r = 0; r < rows; r += RB)
    argmax_pass(x + r * ldx, rows - r < RB ? rows - r : RB, d, ldx, yt, h, npad,
                idx + r, val + r, state);
}

static void fused_top2_f32(const float* x, int64_t rows, int64_t d, int64_t ldx,
                           const float* yt, const float* h, int64_t npad, int64_t* idx,
                           float* val) {
  float state[32 * RB] __attribute__((aligned(32)));
  for (int64_t r = 0; r < rows; r += RB)
    top2_pass(x + r * ldx, rows - r < RB ? rows - r : RB, d, ldx, yt, h, npad,
              idx + 2 * r, val + 2 * r, state);
}
/* The k best targets per row (k <= KMAX), best first, ties to the lower index, into
 * idx/val (rows, k); slots beyond the number of targets get index -1. Blocked like
 * argmax_pass (RB rows per pass over L2-sized target blocks, tiles of four rows by
 * sixteen targets). Each row keeps its sorted list in `state` and its k-th value as
 * a threshold: a tile's scores are compared with the threshold in one vector compare,
 * and only lanes strictly above it are inserted (scalar), in ascending target order,
 * so ties keep the lower index. Once a row has seen a few hundred targets almost no
 * lane passes, and the cost is that of argmax. The scores are the same fma chains as
 * argmax_pass's, so column 0 is bit-identical to fused_argmax_f32. */
#define KMAX 64

typedef struct { float v[KMAX]; int32_t i[KMAX]; float thr; } topk_row;

static inline void topk_insert(topk_row* s, int64_t k, float v, int32_t j) {
  int64_t p = k - 1; /* v > s->v[k-1]: drop the last, shift the smaller ones down */
  while (p > 0 && v > s->v[p - 1]) { s->v[p] = s->v[p - 1]; s->i[p] = s->i[p - 1]; --p; }
  s->v[p] = v; s->i[p] = j;
  s->thr = s->v[k - 1];
}

static inline void topk_offer(topk_row* s, int64_t k, __m256 a, int32_t j) {
  int mask = _mm256_movemask_ps(_mm256_cmp_ps(a, _mm256_set1_ps(s->thr), _CMP_GT_OQ));
  if (!mask) return;
  float vs[8];
  _mm256_storeu_ps(vs, a);
  for (int l = 0; l < 8; ++l)
    if ((mask >> l) & 1 && vs[l] > s->thr) topk_insert(s, k, vs[l], j + l);
}

static void topk_pass(const float* x, int64_t rows, int64_t d, int64_t ldx,
                      const float* yt, const float* h, int64_t npad, int64_t k,
                      int64_t* idx, float* val, topk_row* state) {
  const int64_t TB = target_block(d);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t l = 0; l < k; ++l) { state[r].v[l] = -FLT_MAX; state[r].i[l] = -1; }
    state[r].thr = -FLT_MAX;
  }
  for (int64_t j0 = 0; j0 < npad; j0 += TB) {
    int64_t j1 = j0 + TB < npad ? j0 + TB : npad;
    for (int64_t r = 0; r < rows;) {
      /* four rows at a time; the last rows one by one (a tile of one row repeated) */
      const int n = rows - r >= 4 ? 4 : 1;
      const int64_t step = n == 4 ? ldx : 0;
      const float* xr = x + r * ldx;
      topk_row* st = state + r;
      int64_t j = j0;
      for (; j + 16 <= j1; j += 16) {
        __m256 a[4], c[4];
        tile_4x16(xr, step, yt + j * d, h + j, d, a, c);
        for (int t = 0; t < n; ++t) {
          topk_offer(st + t, k, a[t], (int32_t)j);
          topk_offer(st + t, k, c[t], (int32_t)(j + 8));
        }
      }
      for (; j < j1; j += 8) {
        __m256 a[4];
        tile_4x8(xr, step, yt + j * d, _mm256_loadu_ps(h + j), d, a);
        for (int t = 0; t < n; ++t) topk_offer(st + t, k, a[t], (int32_t)j);
      }
      r += n;
    }
  }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t l = 0; l < k; ++l) {
      /* padding (-FLT_MAX heights) never passes the strict threshold test */
      idx[r * k + l] = state[r].i[l];
      val[r * k + l] = state[r].i[l] < 0 ? -FLT_MAX : state[r].v[l];
    }
}

static void fused_topk_f32(const float* x, int64_t rows, int64_t d, int64_t ldx,
                           const float* yt, const float* h, int64_t npad, int64_t k,
                           int64_t* idx, float* val) {
  topk_row* state = (topk_row*)malloc(sizeof(topk_row) * RB);
  if (!state) {  /* out of memory: report every slot empty */
    for (int64_t r = 0; r < rows * k; ++r) { idx[r] = -1; val[r] = -FLT_MAX; }
    return;
  }
  for (int64_t r = 0; r < rows; r += RB)
    topk_pass(x + r * ldx, rows - r < RB ? rows - r : RB, d, ldx, yt, h, npad, k,
              idx + r * k, val + r * k, state);
  free(state);
}

/* Column statistics of the gaps g_rj = best_r − <x_r, y_j> for the empty-cell lift:
 * lowest[j] = min_r g_rj, total[j] = Σ_r g_rj, total_sq[j] = Σ_r g_rj². The targets
 * are packed in panels (npad / 8, d, 8) as above. Rows are taken in blocks of RB (x's
 * block stays in L1/L2 while every target passes over it); each lane (one target)
 * adds its RB gaps in float32, in row order, and the block sums go into float64
 * totals. Each gap is one fma chain from zero whatever the blocking, so a target's
 * three numbers depend on it and x alone: any split of the targets gives the same bits. */
#define LIFT_UPDATE(acc, bv, mn, sm, sq) do {                                          \
    __m256 g_ = _mm256_sub_ps(bv, acc);                                                  \
    mn = _mm256_min_ps(mn, g_); sm = _mm256_add_ps(sm, g_); sq = _mm256_fmadd_ps(g_, g_, sq); \
  } while (0)

static void lift_block(const float* x, int64_t rows, int64_t d, int64_t ldx,
                       const float* best, const float* yt, int64_t npad,
                       float* lowest, double* total, double* total_sq) {
  static const float zeros[16] = {0};
  const __m256 zero = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j < npad; ) {
    const int wide = j + 16 <= npad;
    __m256 m0 = _mm256_loadu_ps(lowest + j), m1 = wide ? _mm256_loadu_ps(lowest + j + 8) : zero;
    __m256 s0 = zero, s1 = zero, q0 = zero, q1 = zero;
    const float* yk = yt + j * d;
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
      const float* xr = x + r * ldx;
      if (wide) {
        __m256 a[4], c[4];
        tile_4x16(xr, ldx, yk, zeros, d, a, c);
        for (int t = 0; t < 4; ++t) {
          __m256 bv = _mm256_broadcast_ss(best + r + t);
          LIFT_UPDATE(a[t], bv, m0, s0, q0);
          LIFT_UPDATE(c[t], bv, m1, s1, q1);
        }
      } else {
        __m256 a[4];
        tile_4x8(xr, ldx, yk, zero, d, a);
        for (int t = 0; t < 4; ++t) LIFT_UPDATE(a[t], _mm256_broadcast_ss(best + r + t), m0, s0, q0);
      }
    }
    for (; r < rows; ++r) {
      const float* xr = x + r * ldx;
      __m256 bv = _mm256_broadcast_ss(best + r);
      __m256 a0 = zero;
      const float* y0 = yk;
      for (int64_t k = 0; k < d; ++k, y0 += 8) SCORE(a0, xr, _mm256_loadu_ps(y0), k);
      LIFT_UPDATE(a0, bv, m0, s0, q0);
      if (wide) {
        __m256 a1 = zero;
        const float* y1 = yk + 8 * d;
        for (int64_t k = 0; k < d; ++k, y1 += 8) SCORE(a1, xr, _mm256_loadu_ps(y1), k);
        LIFT_UPDATE(a1, bv, m1, s1, q1);
      }
    }
    float sv[16], qv[16];
    _mm256_storeu_ps(lowest + j, m0); _mm256_storeu_ps(sv, s0); _mm256_storeu_ps(qv, q0);
    if (wide) {
      _mm256_storeu_ps(lowest + j + 8, m1); _mm256_storeu_ps(sv + 8, s1); _mm256_storeu_ps(qv + 8, q1);
    }
    const int width = wide ? 16 : 8;
    for (int l = 0; l < width; ++l) { total[j + l] += sv[l]; total_sq[j + l] += qv[l]; }
    j += width;
  }
}

static void fused_lift_f32(const float* x, int64_t rows, int64_t d, int64_t ldx,
                           const float* best, const float* yt, int64_t npad, float* lowest,
                           double* total, double* total_sq) {
  for (int64_t j = 0; j < npad; ++j) { lowest[j] = FLT_MAX; total[j] = 0; total_sq[j] = 0; }
  for (int64_t r = 0; r < rows; r += RB)
    lift_block(x + r * ldx, rows - r < RB ? rows - r : RB, d, ldx, best + r, yt, npad,
               lowest, total, total_sq);
}
#endif

/* Lawson edge flips towards the regular triangulation of weighted 2D sites.
 *
 * The loop of aeot.ot.power2d._lawson_flips, with the same tests in the same order:
 * triangles S (3F, flat) and neighbours NB (3F, the triangle across the edge opposite
 * entry 3f + m, or -1), both updated in place; `edges` holds the n0 edges (entries
 * 3f + m) to check first, or, with n0 = -3F < 0 (`edges` unused), every interior edge
 * is tested once in increasing order of its entry (3f + m with NB[3f + m] > f) and the
 * non-regular ones are checked first, as the caller's vectorised test would pass them.
 * Returns the number of flips made; -1 after more than
 * max_flips (or on an inconsistent adjacency or a failed allocation); with
 * stop_at_hidden, -2 as soon as an edge proves a site hidden (its cell empty).
 */
/* ψ_i − ψ_j for weights held as psi + lo (lo: the low parts of a double-double, or
 * NULL): the high parts' difference is exact or nearly so for neighbouring sites, whose
 * weights are close, so the difference keeps the low parts' digits. */
static inline double psi_diff(const double* psi, const double* lo, int64_t i, int64_t j) {
  double d = psi[i] - psi[j];
  return lo == NULL ? d : d + (lo[i] - lo[j]);
}

static inline double lift_below(const double* px, const double* py, const double* psi,
                                const double* lo, int64_t a, int64_t b, int64_t c,
                                int64_t d) {
  double bx = px[b] - px[a], by = py[b] - py[a];
  double cx = px[c] - px[a], cy = py[c] - py[a];
  double dx = px[d] - px[a], dy = py[d] - py[a];
  double wb = 0.5 * (bx * bx + by * by) - psi_diff(psi, lo, b, a);
  double wc = 0.5 * (cx * cx + cy * cy) - psi_diff(psi, lo, c, a);
  double wd = 0.5 * (dx * dx + dy * dy) - psi_diff(psi, lo, d, a);
  double det3 = bx * (cy * wd - wc * dy) - by * (cx * wd - wc * dx) + wb * (cx * dy - cy * dx);
  return det3 * (bx * cy - by * cx);
}

static inline int64_t slot_of(const int64_t* v, int64_t x) {
  return v[0] == x ? 0 : (v[1] == x ? 1 : (v[2] == x ? 2 : -1));
}

static int64_t lawson_flips(const double* px, const double* py, const double* psi,
                            const double* lo, int64_t* S, int64_t* NB, const int64_t* edges, int64_t n0,
                            int64_t max_flips, int64_t stop_at_hidden) {
  int64_t cap = n0 > 512 ? 2 * n0 : 1024, top = n0 > 0 ? n0 : 0, flips = 0, result = -1;
  int64_t* stack = (int64_t*)malloc((size_t)cap * sizeof(int64_t));
  if (stack == NULL) return -1;
  if (n0 > 0) memcpy(stack, edges, (size_t)n0 * sizeof(int64_t));
  if (n0 < 0) {
    for (int64_t e = 0; e < -n0; e++) {
      int64_t f = e / 3, g = NB[e];
      if (g <= f) continue; /* a boundary edge, or an interior one met from its other side */
      int64_t k = slot_of(NB + 3 * g, f);
      if (k < 0) goto done; /* inconsistent adjacency: let the caller use Qhull */
      int64_t m = e % 3, o = 3 * f;
      if (lift_below(px, py, psi, lo, S[o + (m + 1) % 3], S[o + (m + 2) % 3], S[o + m],
                     S[3 * g + k]) >= 0)
        continue;
      if (top == cap) {
        int64_t* grown = (int64_t*)realloc(stack, (size_t)(2 * cap) * sizeof(int64_t));
        if (grown == NULL) goto done;
        stack = grown;
        cap *= 2;
      }
      stack[top++] = e;
    }
  }
  while (top > 0) {
    int64_t e1 = stack[--top];
    int64_t f2 = NB[e1];
    if (f2 < 0) continue;
    int64_t f1 = e1 / 3, m1 = e1 % 3, o1 = 3 * f1, o2 = 3 * f2;
    int64_t* s1 = S + o1;
    int64_t* s2 = S + o2;
    int64_t* nb1 = NB + o1;
    int64_t* nb2 = NB + o2;
    int64_t a = s1[(m1 + 1) % 3], b = s1[(m1 + 2) % 3], c = s1[m1];
    int64_t k2 = slot_of(nb2, f1);
    if (k2 < 0) goto done; /* inconsistent adjacency: let the caller use Qhull */
    int64_t d = s2[k2];
    if (lift_below(px, py, psi, lo, a, b, c, d) >= 0) continue;
    double ux = px[d] - px[c], uy = py[d] - py[c];
    double side_a = ux * (py[a] - py[c]) - uy * (px[a] - px[c]);
    double side_b = ux * (py[b] - py[c]) - uy * (px[b] - px[c]);
    if (!(side_a * side_b < 0)) {
      /* Not flippable: a or b lies inside the triangle of the other three, whose
       * plane its lifted point lies above (the edge is not regular), so its cell is
       * empty. */
      if (stop_at_hidden && side_a * side_b > 0) { result = -2; goto done; }
      continue;
    }
    if (++flips > max_flips) goto done;
    int64_t ka = slot_of(s2, a), kb = slot_of(s2, b);
    if (ka < 0 || kb < 0) goto done; /* inconsistent adjacency: let the caller use Qhull */
    int64_t n_ac = nb1[slot_of(s1, b)], n_bc = nb1[slot_of(s1, a)];
    int64_t n_ad = nb2[kb], n_bd = nb2[ka];
    s1[0] = a; s1[1] = c; s1[2] = d;
    nb1[0] = f2; nb1[1] = n_ad; nb1[2] = n_ac;
    s2[0] = b; s2[1] = c; s2[2] = d;
    nb2[0] = f1; nb2[1] = n_bd; nb2[2] = n_bc;
    if (n_ad >= 0) { int64_t k = slot_of(NB + 3 * n_ad, f2); if (k >= 0) NB[3 * n_ad + k] = f1; }
    if (n_bc >= 0) { int64_t k = slot_of(NB + 3 * n_bc, f1); if (k >= 0) NB[3 * n_bc + k] = f2; }
    if (top + 4 > cap) {
      int64_t* grown = (int64_t*)realloc(stack, (size_t)(2 * cap) * sizeof(int64_t));
      if (grown == NULL) goto done;
      stack = grown;
      cap *= 2;
    }
    stack[top++] = o1 + 1; stack[top++] = o1 + 2;
    stack[top++] = o2 + 1; stack[top++] = o2 + 2;
  }
  result = flips;
done:
  free(stack);
  return result;
}

/* The diagram edges of a regular triangulation and their part of the cell areas.
 *
 * The loops of aeot.ot.power2d._dual_edges (warm start: no Qhull hyperplanes) and of
 * the interior part of _assemble, with the same formulas in the same order. Sites
 * (px, py), weights psi (N) with low parts lo (N, or NULL); triangles S and neighbours NB (3F, flat, as for
 * lawson_flips); box = (low0, low1, high0, high1); shift (2N: y - r, the sites minus
 * their reference points clipped to the box) or NULL when every site is inside; V (2F)
 * scratch for the diagram vertices. Every edge (each interior one once, in order of
 * its entry 3f + m, every hull edge) is clipped to the box; the E kept (positive
 * length inside the box) go to ei, ej, length, seg (4E: both end points) and cut (bit 0:
 * the first end lies on the box boundary, bit 1 the second), and add
 * ½ <x - r, n_out> |e| to area_i[ei] and area_j[ej] (N each, zeroed by the caller).
 * Returns E, or -1 when the triangulation is not the regular one or has a skinny or
 * flat triangle (the caller runs Qhull), or -2 for a line parallel to a side of the
 * box (the caller's NumPy path handles it). No infinities: rays are flagged.
 */
static int64_t warm_edges(const double* px, const double* py, const double* psi,
                          const double* lo, const int64_t* S, const int64_t* NB, int64_t F, const double* box,
                          const double* shift, double* V, int64_t* ei, int64_t* ej,
                          double* length, double* seg, uint8_t* cut, double* area_i,
                          double* area_j) {
  const double lo0 = box[0], lo1 = box[1], hi0 = box[2], hi1 = box[3];
  const double tol = 1e-10 * sqrt((hi0 - lo0) * (hi0 - lo0) + (hi1 - lo1) * (hi1 - lo1));
  for (int64_t f = 0; f < F; f++) {
    int64_t a = S[3 * f], b = S[3 * f + 1], c = S[3 * f + 2];
    double nab = (px[b] - px[a]) * (px[b] - px[a]) + (py[b] - py[a]) * (py[b] - py[a]);
    double nac = (px[c] - px[a]) * (px[c] - px[a]) + (py[c] - py[a]) * (py[c] - py[a]);
    double nbc = (px[c] - px[b]) * (px[c] - px[b]) + (py[c] - py[b]) * (py[c] - py[b]);
    /* skinny: |det| / |ab||ac|, the |sin| of the angle at the listed first corner, below 1e-8 */
    double skinny_at = 1e-8 * sqrt(nab * nac);
    /* The vertex from the corner opposite the longest side (the triangle rotated, which
     * keeps det): from a far corner of two close sites, r1 d2 and r2 d1 nearly cancel
     * and the vertex moves by ~1e-16 |d|³ / det along their short edge. */
    if (nab > nbc || nac > nbc) {
      int64_t o = a;
      if (nab >= nac) { a = c; c = b; b = o; } /* opposite ab: start from c */
      else { a = b; b = c; c = o; }            /* opposite ac: start from b */
    }
    double d1x = px[b] - px[a], d1y = py[b] - py[a];
    double d2x = px[c] - px[a], d2y = py[c] - py[a];
    double r1 = 0.5 * (d1x * d1x + d1y * d1y) + psi_diff(psi, lo, a, b);
    double r2 = 0.5 * (d2x * d2x + d2y * d2y) + psi_diff(psi, lo, a, c);
    double det = d1x * d2y - d1y * d2x;
    if (fabs(det) <= skinny_at) return -1; /* skinny */
    V[2 * f] = px[a] + (r1 * d2y - r2 * d1y) / det;
    V[2 * f + 1] = py[a] + (d1x * r2 - d2x * r1) / det;
  }
  int64_t E = 0;
  for (int64_t e = 0; e < 3 * F; e++) {
    int64_t f = e / 3, m = e % 3, g = NB[e];
    if (g >= 0 && g <= f) continue; /* an interior edge, met from its other side */
    int64_t i = S[3 * f + (m + 1) % 3], j = S[3 * f + (m + 2) % 3], k = S[3 * f + m];
    double dx = px[j] - px[i], dy = py[j] - py[i];
    double dist = sqrt(dx * dx + dy * dy);
    double nx = dx / dist, ny = dy / dist;
    double offset = psi_diff(psi, lo, i, j) / dist;
    double p0x = 0.5 * (px[i] + px[j]) + offset * nx;
    double p0y = 0.5 * (py[i] + py[j]) + offset * ny;
    double tx = -ny, ty = nx;
    double tau_f = (V[2 * f] - p0x) * tx + (V[2 * f + 1] - p0y) * ty;
    double kx = px[k] - px[i], ky = py[k] - py[i];
    double away = kx * tx + ky * ty;
    if (fabs(away) <= 1e-9 * sqrt(kx * kx + ky * ky)) return -1; /* flat */
    int fwd = away < 0;
    /* [tlo, thi]; a ray is open at one end (no infinities under -ffinite-math-only) */
    double tlo = tau_f, thi = tau_f;
    int open_lo = 0, open_hi = 0;
    if (g < 0) {
      if (fwd) open_hi = 1; else open_lo = 1;
    } else {
      double tau_g = (V[2 * g] - p0x) * tx + (V[2 * g + 1] - p0y) * ty;
      if ((fwd ? tau_g - tau_f : tau_f - tau_g) < 0) return -1; /* not regular */
      if (fwd) thi = tau_g; else tlo = tau_g;
    }
    if (tx == 0 || ty == 0) return -2; /* parallel to a side */
    double b1 = (lo0 - p0x) / tx, b2 = (hi0 - p0x) / tx;
    double c1 = (lo1 - p0y) / ty, c2 = (hi1 - p0y) / ty;
    double box_lo = fmax(fmin(b1, b2), fmin(c1, c2));
    double box_hi = fmin(fmax(b1, b2), fmax(c1, c2));
    double cl = open_lo ? box_lo : fmax(tlo, box_lo);
    double ch = open_hi ? box_hi : fmin(thi, box_hi);
    if (!(ch > cl)) continue;
    ei[E] = i;
    ej[E] = j;
    double len = ch - cl;
    length[E] = len;
    double* q = seg + 4 * E;
    q[0] = fmin(fmax(p0x + cl * tx, lo0), hi0);
    q[1] = fmin(fmax(p0y + cl * ty, lo1), hi1);
    q[2] = fmin(fmax(p0x + ch * tx, lo0), hi0);
    q[3] = fmin(fmax(p0y + ch * ty, lo1), hi1);
    cut[E] = (uint8_t)((open_lo || box_lo >= tlo - tol) | ((open_hi || box_hi <= thi + tol) << 1));
    double dist_i = 0.5 * dist + offset, dist_j = 0.5 * dist - offset;
    if (shift != NULL) {
      dist_i += shift[2 * i] * nx + shift[2 * i + 1] * ny;
      dist_j -= shift[2 * j] * nx + shift[2 * j + 1] * ny;
    }
    area_i[i] += 0.5 * dist_i * len;
    area_j[j] += 0.5 * dist_j * len;
    E++;
  }
  return E;
}


/* The regular triangulation of N sites (px, py) with weights psi + lo (lo may be NULL),
 * by a radial sweep with Lawson flips after every insertion (the scheme of Mapbox's
 * Delaunator: sites sorted by distance from the circumcentre of a small seed triangle,
 * each joined to the hull edges it sees, the new edges made regular by flips; for psi = 0
 * the Delaunay triangulation).  Triangles are counter-clockwise; S (3T) their sites,
 * NB (3T) the triangle opposite each site or -1, T <= 2N - 5 (the caller allocates
 * 3 (2N) of each).  Returns T, or -1 when the sites are collinear or coincide, a site
 * lies on a hull edge, a weight hides a site, or an allocation fails: the caller then
 * runs Qhull.  Floating-point predicates: the caller checks the result's regularity.
 */
typedef struct { double d; int64_t i; } dist_index;

static int cmp_dist_index(const void* a, const void* b) {
  double x = ((const dist_index*)a)->d, y = ((const dist_index*)b)->d;
  int64_t i = ((const dist_index*)a)->i, j = ((const dist_index*)b)->i;
  return x < y ? -1 : (x > y ? 1 : (i < j ? -1 : (i > j)));
}

static inline double orient2(const double* px, const double* py, int64_t a, int64_t b,
                             int64_t c) {
  return (px[b] - px[a]) * (py[c] - py[a]) - (py[b] - py[a]) * (px[c] - px[a]);
}

static inline int64_t sweep_hash(double dx, double dy, int64_t size) {
  double norm = fabs(dx) + fabs(dy);
  if (!(norm > 0)) return 0; /* a site at the centre: any bucket is a valid start */
  double p = dx / norm; /* pseudo-angle in [0, 4), monotone in the angle */
  double a = (dy > 0 ? 3.0 - p : 1.0 + p) / 4.0;
  int64_t k = (int64_t)floor(a * (double)size);
  return ((k % size) + size) % size;
}

typedef struct {
  const double *px, *py, *psi, *lo;
  int64_t *tri, *he, *hull_tri, *stack;
  int64_t n_tri, stack_cap, hull_start;
  int64_t *hull_prev;
  int64_t flips_left; /* rounding could make two diagonals flip back and forth */
} sweep_state;

static inline void sweep_link(sweep_state* w, int64_t a, int64_t b) {
  w->he[a] = b;
  if (b >= 0) w->he[b] = a;
}

static int64_t sweep_add(sweep_state* w, int64_t a, int64_t b, int64_t c, int64_t ha,
                         int64_t hb, int64_t hc) {
  int64_t t = 3 * w->n_tri;
  w->tri[t] = a; w->tri[t + 1] = b; w->tri[t + 2] = c;
  sweep_link(w, t, ha); sweep_link(w, t + 1, hb); sweep_link(w, t + 2, hc);
  w->n_tri++;
  return t;
}

/* Flip the edges opposite the new site until regular; returns the half-edge leaving the
 * new site along the last edge examined (Delaunator's bookkeeping), or -2 when the
 * stack cannot grow or the flips exceed their budget (64 per site in all). */
static int64_t sweep_legalize(sweep_state* w, int64_t a) {
  int64_t top = 0, ar = 0;
  for (;;) {
    int64_t b = w->he[a], a0 = a - a % 3;
    ar = a0 + (a + 2) % 3;
    if (b < 0) {
      if (top == 0) break;
      a = w->stack[--top];
      continue;
    }
    int64_t b0 = b - b % 3, al = a0 + (a + 1) % 3, bl = b0 + (b + 2) % 3;
    int64_t p0 = w->tri[ar], pr = w->tri[a], pl = w->tri[al], p1 = w->tri[bl];
    /* not regular, and the quadrilateral convex (with weights it need not be; such an
     * edge stays, and the caller's regularity check sends the result to Qhull) */
    if (lift_below(w->px, w->py, w->psi, w->lo, pr, pl, p0, p1) < 0 &&
        orient2(w->px, w->py, p0, p1, pr) * orient2(w->px, w->py, p0, p1, pl) < 0) {
      if (--w->flips_left < 0) return -2;
      w->tri[a] = p1;
      w->tri[b] = p0;
      int64_t hbl = w->he[bl];
      if (hbl < 0) { /* a hull edge changed triangles: fix its reference */
        int64_t e = w->hull_start;
        do {
          if (w->hull_tri[e] == bl) { w->hull_tri[e] = a; break; }
          e = w->hull_prev[e];
        } while (e != w->hull_start);
      }
      sweep_link(w, a, hbl);
      sweep_link(w, b, w->he[ar]);
      sweep_link(w, ar, bl);
      if (top == w->stack_cap) {
        int64_t* grown = (int64_t*)realloc(w->stack, (size_t)(2 * w->stack_cap) * sizeof(int64_t));
        if (grown == NULL) return -2;
        w->stack = grown;
        w->stack_cap *= 2;
      }
      w->stack[top++] = b0 + (b + 1) % 3;
    } else {
      if (top == 0) break;
      a = w->stack[--top];
    }
  }
  return ar;
}

static int64_t sweep_triangulate(const double* px, const double* py, const double* psi,
                                 const double* lo, int64_t n, int64_t* S, int64_t* NB) {
  if (n < 3) return -1;
  int64_t result = -1, hash_size = (int64_t)ceil(sqrt((double)n));
  int64_t* he = (int64_t*)malloc((size_t)(6 * n) * sizeof(int64_t));
  int64_t* hull_next = (int64_t*)malloc((size_t)n * sizeof(int64_t));
  int64_t* hull_prev = (int64_t*)malloc((size_t)n * sizeof(int64_t));
  int64_t* hull_tri = (int64_t*)malloc((size_t)n * sizeof(int64_t));
  int64_t* hash = (int64_t*)malloc((size_t)hash_size * sizeof(int64_t));
  dist_index* order = (dist_index*)malloc((size_t)n * sizeof(dist_index));
  sweep_state w = {px, py, psi, lo, S, he, hull_tri, NULL, 0, 64, 0, hull_prev, 64 * n};
  w.stack = (int64_t*)malloc(64 * sizeof(int64_t));
  if (!he || !hull_next || !hull_prev || !hull_tri || !hash || !order || !w.stack) goto done;
  /* seed: the site nearest the box centre, its nearest site, and the site making the
   * smallest circumcircle with them */
  double x0 = px[0], x1 = px[0], y0 = py[0], y1 = py[0];
  for (int64_t i = 1; i < n; i++) {
    x0 = fmin(x0, px[i]); x1 = fmax(x1, px[i]); y0 = fmin(y0, py[i]); y1 = fmax(y1, py[i]);
  }
  double cx = 0.5 * (x0 + x1), cy = 0.5 * (y0 + y1), best = INFINITY;
  int64_t i0 = -1, i1 = -1, i2 = -1;
  for (int64_t i = 0; i < n; i++) {
    double d = (px[i] - cx) * (px[i] - cx) + (py[i] - cy) * (py[i] - cy);
    if (d < best) { best = d; i0 = i; }
  }
  best = INFINITY;
  for (int64_t i = 0; i < n; i++) {
    double d = (px[i] - px[i0]) * (px[i] - px[i0]) + (py[i] - py[i0]) * (py[i] - py[i0]);
    if (i != i0 && d > 0 && d < best) { best = d; i1 = i; }
  }
  if (i1 < 0) goto done;
  best = INFINITY;
  double ccx = 0, ccy = 0;
  for (int64_t i = 0; i < n; i++) {
    if (i == i0 || i == i1) continue;
    double bx = px[i1] - px[i0], by = py[i1] - py[i0], qx = px[i] - px[i0], qy = py[i] - py[i0];
    double det = bx * qy - by * qx;
    if (fabs(det) <= 1e-12 * (bx * bx + by * by + qx * qx + qy * qy)) continue;
    double b2 = bx * bx + by * by, q2 = qx * qx + qy * qy;
    double ux = 0.5 * (qy * b2 - by * q2) / det, uy = 0.5 * (bx * q2 - qx * b2) / det;
    double r = ux * ux + uy * uy;
    if (r < best) { best = r; i2 = i; ccx = px[i0] + ux; ccy = py[i0] + uy; }
  }
  if (i2 < 0) goto done; /* collinear */
  if (orient2(px, py, i0, i1, i2) < 0) { int64_t t = i1; i1 = i2; i2 = t; }
  for (int64_t i = 0; i < n; i++) {
    order[i].d = (px[i] - ccx) * (px[i] - ccx) + (py[i] - ccy) * (py[i] - ccy);
    order[i].i = i;
  }
  qsort(order, (size_t)n, sizeof(dist_index), cmp_dist_index);
  for (int64_t k = 0; k < hash_size; k++) hash[k] = -1;
  for (int64_t i = 0; i < n; i++) hull_next[i] = hull_prev[i] = hull_tri[i] = -1;
  hull_next[i0] = hull_prev[i2] = i1;
  hull_next[i1] = hull_prev[i0] = i2;
  hull_next[i2] = hull_prev[i1] = i0;
  hull_tri[i0] = 0; hull_tri[i1] = 1; hull_tri[i2] = 2;
  w.hull_start = i0;
  hash[sweep_hash(px[i0] - ccx, py[i0] - ccy, hash_size)] = i0;
  hash[sweep_hash(px[i1] - ccx, py[i1] - ccy, hash_size)] = i1;
  hash[sweep_hash(px[i2] - ccx, py[i2] - ccy, hash_size)] = i2;
  sweep_add(&w, i0, i1, i2, -1, -1, -1);
  int64_t inserted = 3;
  for (int64_t k = 0; k < n; k++) {
    int64_t p = order[k].i;
    if (p == i0 || p == i1 || p == i2) continue;
    /* a hull site near p's direction from the centre, then the first edge p sees */
    int64_t start = -1, key = sweep_hash(px[p] - ccx, py[p] - ccy, hash_size);
    for (int64_t j = 0; j < hash_size; j++) {
      start = hash[(key + j) % hash_size];
      if (start >= 0 && hull_next[start] >= 0) break;
    }
    if (start < 0 || hull_next[start] < 0) goto done;
    start = hull_prev[start];
    int64_t e = start, q;
    while (q = hull_next[e], !(orient2(px, py, e, q, p) < 0)) {
      e = q;
      if (e == start) goto done; /* p sees no edge: a duplicate or a point on the hull */
    }
    int64_t t = sweep_add(&w, e, p, q, -1, -1, hull_tri[e]);
    int64_t h = sweep_legalize(&w, t + 2);
    if (h == -2) goto done;
    hull_tri[p] = h;
    hull_tri[e] = t;
    int64_t m = hull_next[e];
    /* the walks stop at the last edge (m, e) left on the hull: if p sees that one too,
     * rounding made it see the whole hull, and the kernel gives up below */
    while (q = hull_next[m], q != e && orient2(px, py, m, q, p) < 0) {
      t = sweep_add(&w, m, p, q, hull_tri[p], -1, hull_tri[m]);
      h = sweep_legalize(&w, t + 2);
      if (h == -2) goto done;
      hull_tri[p] = h;
      hull_next[m] = -1; /* removed from the hull */
      m = q;
    }
    if (e == start) {
      while (q = hull_prev[e], q != m && orient2(px, py, q, e, p) < 0) {
        t = sweep_add(&w, q, p, e, -1, hull_tri[e], hull_tri[q]);
        if (sweep_legalize(&w, t + 2) == -2) goto done;
        hull_tri[q] = t;
        hull_next[e] = -1;
        e = q;
      }
    }
    if (hull_next[m] == e && orient2(px, py, m, e, p) < 0) goto done;
    w.hull_start = hull_prev[p] = e;
    hull_next[e] = hull_prev[m] = p;
    hull_next[p] = m;
    hash[sweep_hash(px[p] - ccx, py[p] - ccy, hash_size)] = p;
    hash[sweep_hash(px[e] - ccx, py[e] - ccy, hash_size)] = e;
    inserted++;
  }
  if (inserted != n) goto done;
  /* neighbours opposite each corner; every triangle counter-clockwise */
  for (int64_t t = 0; t < w.n_tri; t++) {
    if (!(orient2(px, py, S[3 * t], S[3 * t + 1], S[3 * t + 2]) > 0)) goto done;
    for (int64_t k = 0; k < 3; k++) {
      int64_t g = he[3 * t + k];
      NB[3 * t + (k + 2) % 3] = g < 0 ? -1 : g / 3;
    }
  }
  result = w.n_tri;
done:
  free(he); free(hull_next); free(hull_prev); free(hull_tri); free(hash); free(order);
  free(w.stack);
  return result;
}

/* Log-sum-exp passes of the accelerated discrete OT solver (aeot.ot.accelerated).
 *
 * exp_nonpos(x) = e^x for x <= 0, to about one ulp above x = -708 and 0 below (a value
 * there is under 1e-307 of a row's largest weight): k = round(x / ln 2) by the
 * 1.5 * 2^52 shift, r = x - k ln 2 in two parts (|r| <= ln 2 / 2), e^r by its Taylor
 * series to degree 12 (remainder below 2.3e-16 relative), times 2^k built in the
 * exponent bits. Written with plain arithmetic and a memcpy so that the compiler
 * vectorises the loops that call it (the AVX2 variant four at a time). */
static inline double exp_nonpos(double x) {
  const double shift = 0x1.8p52;
  double xc = x < -708.0 ? -708.0 : x;
  double t = xc * 1.4426950408889634 + shift;
  double k = t - shift;
  double r = xc - k * 0x1.62e42fefa3800p-1;
  r = r - k * 0x1.ef35793c76730p-45;
  double p = 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  uint64_t bits;
  memcpy(&bits, &t, sizeof bits);
  bits = (bits << 52) + ((uint64_t)1023 << 52); /* 2^k: the low bits of t hold k */
  double scale;
  memcpy(&scale, &bits, sizeof scale);
  return x < -708.0 ? 0.0 : p * scale;
}

/* Reductions in 8 interleaved lanes, combined pairwise at the end: the order is fixed
 * by the code, so the compiler vectorises them without -ffast-math. (The kernels build
 * with -ffinite-math-only; "lowest" starts a max below every finite value.) */
#define LANES 8
static inline double lanes_sum(const double* p) {
  return ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));
}
static inline double lanes_max(const double* p) {
  double t = p[0];
  for (int l = 1; l < LANES; ++l) t = p[l] > t ? p[l] : t;
  return t;
}

/* buf[k] = e^(buf[k] - top) for k < n; returns their sum */
static inline double exp_shift_sum(double* buf, int64_t n, double top) {
  for (int64_t k = 0; k < n; ++k) buf[k] = exp_nonpos(buf[k] - top);
  double p[LANES] = {0};
  int64_t k = 0;
  for (; k + LANES <= n; k += LANES)
    for (int l = 0; l < LANES; ++l) p[l] += buf[k + l];
  double s = lanes_sum(p);
  for (; k < n; ++k) s += buf[k];
  return s;
}

/* buf_j = (psi_j - c_j) * inv for j < m; returns the largest (exact, whatever the lanes) */
static inline double scaled_gaps_max(const double* psi, const double* c, int64_t m,
                                     double inv, double* buf) {
  double mx[LANES];
  for (int l = 0; l < LANES; ++l) mx[l] = -DBL_MAX;
  int64_t j = 0;
  for (; j + LANES <= m; j += LANES)
    for (int l = 0; l < LANES; ++l) {
      double z = (psi[j + l] - c[j + l]) * inv;
      buf[j + l] = z;
      mx[l] = z > mx[l] ? z : mx[l];
    }
  double top = lanes_max(mx);
  for (; j < m; ++j) {
    double z = (psi[j] - c[j]) * inv;
    buf[j] = z;
    top = z > top ? z : top;
  }
  return top;
}

/* One pass of E_lambda over the dense rows of C (rows x m, leading dimension ld): for each
 * row, z_j = (psi_j - C_ij) / reg, top = max_j z_j, s = sum_j e^(z_j - top);
 * columns_j += a_i e^(z_j - top) / s. Returns sum_i a_i (top + log s). buf: m doubles. */
static double lse_dense_f64(const double* c, int64_t rows, int64_t m, int64_t ld,
                            const double* psi, const double* a, double reg, double* buf,
                            double* columns) {
  const double inv = 1.0 / reg;
  double acc = 0.0;
  for (int64_t i = 0; i < rows; ++i) {
    const double top = scaled_gaps_max(psi, c + i * ld, m, inv, buf);
    double s = exp_shift_sum(buf, m, top);
    const double f = a[i] / s;
    for (int64_t j = 0; j < m; ++j) columns[j] += f * buf[j];
    acc += a[i] * (top + log(s));
  }
  return acc;
}

/* The same pass over a CSR list (row i: entries ptr[i] .. ptr[i + 1] - 1, columns col,
 * costs v; every row non-empty): w_k = a_i e^(z_k - top_i) / s_i is written for each
 * entry and added to columns[col_k]. Returns sum_i a_i (top_i + log s_i). */
static double lse_csr_f64(const double* psi, const int64_t* col, const double* v,
                          const int64_t* ptr, int64_t rows, const double* a, double reg,
                          double* w, double* columns) {
  const double inv = 1.0 / reg;
  double acc = 0.0;
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t lo = ptr[i], n = ptr[i + 1] - lo;
    const int64_t* ck = col + lo;
    const double* vk = v + lo;
    double* wk = w + lo;
    double mx[LANES];
    for (int l = 0; l < LANES; ++l) mx[l] = -DBL_MAX;
    int64_t k = 0;
    for (; k + LANES <= n; k += LANES)
      for (int l = 0; l < LANES; ++l) {
        double z = (psi[ck[k + l]] - vk[k + l]) * inv;
        wk[k + l] = z;
        mx[l] = z > mx[l] ? z : mx[l];
      }
    double top = lanes_max(mx);
    for (; k < n; ++k) {
      double z = (psi[ck[k]] - vk[k]) * inv;
      wk[k] = z;
      top = z > top ? z : top;
    }
    double s = exp_shift_sum(wk, n, top);
    const double f = a[i] / s;
    for (k = 0; k < n; ++k) wk[k] *= f;
    for (k = 0; k < n; ++k) columns[ck[k]] += wk[k];
    acc += a[i] * (top + log(s));
  }
  return acc;
}

/* The active set's first pass: top_i = max_j (psi0_j - C_ij) and count_i, the entries
 * with psi0_j - C_ij >= top_i - radius (the fill pass makes the same test: the product
 * by 1 in scaled_gaps_max is exact). Returns the sum of the counts. buf: m doubles. */
static int64_t active_count_f64(const double* c, int64_t rows, int64_t m, int64_t ld,
                                const double* psi0, double radius, double* buf, double* top,
                                int64_t* count) {
  int64_t total = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const double t = scaled_gaps_max(psi0, c + i * ld, m, 1.0, buf);
    const double cut = t - radius;
    int64_t n = 0;
    for (int64_t j = 0; j < m; ++j) n += buf[j] >= cut;
    top[i] = t;
    count[i] = n;
    total += n;
  }
  return total;
}

/* Its second pass: row i's entries, in column order, at ptr[i] .. ptr[i + 1] - 1 of col
 * and v. It never writes past ptr[i + 1] and returns the number of rows whose entries
 * did not fill their range exactly (0 for finite input: both passes make the same test;
 * a NaN, which the -ffinite-math-only build may test either way, can make them differ,
 * and the caller then refuses the list). */
static int64_t active_fill_f64(const double* c, int64_t rows, int64_t m, int64_t ld,
                               const double* psi0, const double* top, double radius,
                               const int64_t* ptr, int64_t* col, double* v) {
  int64_t bad = 0;
  for (int64_t i = 0; i < rows; ++i) {
    const double* ci = c + i * ld;
    const double cut = top[i] - radius;
    const int64_t end = ptr[i + 1];
    int64_t k = ptr[i], j = 0;
    /* LANES columns at a time: a vectorised test whether any is kept, most are not */
    for (; j + LANES <= m; j += LANES) {
      int any = 0;
      for (int l = 0; l < LANES; ++l) any |= (psi0[j + l] - ci[j + l]) >= cut;
      if (!any) continue;
      for (int l = 0; l < LANES; ++l)
        if (psi0[j + l] - ci[j + l] >= cut && k < end) {
          col[k] = j + l;
          v[k] = ci[j + l];
          ++k;
        }
    }
    for (; j < m; ++j)
      if (psi0[j] - ci[j] >= cut && k < end) {
        col[k] = j;
        v[k] = ci[j];
        ++k;
      }
    bad += k != end;
  }
  return bad;
}

/* phi_i = min_j (C_ij - psi_j) (the c-transform) and dot_i = sum_j C_ij x_j: two loops
 * over each row, the second reading it from cache (GCC compiled the fused loop to about
 * twice the time of the two, 0.18 s against 0.10 s at 10^4 x 10^4 with AVX2). */
static void ctransform_dot_f64(const double* c, int64_t rows, int64_t m, int64_t ld,
                               const double* psi, const double* x, double* phi, double* dot) {
  for (int64_t i = 0; i < rows; ++i) {
    const double* ci = c + i * ld;
    double mn[LANES], p[LANES];
    for (int l = 0; l < LANES; ++l) mn[l] = DBL_MAX, p[l] = 0.0;
    int64_t j = 0;
    for (; j + LANES <= m; j += LANES)
      for (int l = 0; l < LANES; ++l) {
        double z = ci[j + l] - psi[j + l];
        mn[l] = z < mn[l] ? z : mn[l];
      }
    for (j = 0; j + LANES <= m; j += LANES)
      for (int l = 0; l < LANES; ++l) p[l] += ci[j + l] * x[j + l];
    double lo = mn[0], d = lanes_sum(p);
    for (int l = 1; l < LANES; ++l) lo = mn[l] < lo ? mn[l] : lo;
    for (; j < m; ++j) {
      double z = ci[j] - psi[j];
      lo = z < lo ? z : lo;
      d += ci[j] * x[j];
    }
    phi[i] = lo;
    dot[i] = d;
  }
}

const aeot_kernels AEOT_TABLE = {
    .name = AEOT_VARIANT,
    .argmax_rows_f32 = argmax_rows_f32,
    .argmax_rows_f64 = argmax_rows_f64,
    .top2_rows_f32 = top2_rows_f32,
    .top2_rows_f64 = top2_rows_f64,
    .gather_dot_f32 = gather_dot_f32,
    .gather_dot_f64 = gather_dot_f64,
    .cand_top2_f32 = cand_top2_f32,
    .cand_top2_f64 = cand_top2_f64,
    .lawson_flips = lawson_flips,
    .warm_edges = warm_edges,
    .sweep_triangulate = sweep_triangulate,
    .lse_dense_f64 = lse_dense_f64,
    .lse_csr_f64 = lse_csr_f64,
    .active_count_f64 = active_count_f64,
    .active_fill_f64 = active_fill_f64,
    .ctransform_dot_f64 = ctransform_dot_f64,
#ifdef AEOT_FUSED
    .fused_argmax_f32 = fused_argmax_f32,
    .fused_top2_f32 = fused_top2_f32,
    .fused_topk_f32 = fused_topk_f32,
    .fused_lift_f32 = fused_lift_f32,
#endif
};
