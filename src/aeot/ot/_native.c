/* Row reductions for the semi-discrete OT inner loop.
 *
 * The score matrix S (rows = samples, cols = targets, row-major, leading
 * dimension ld) comes from a BLAS GEMM. Torch's value+index reduction over it is
 * not vectorised; these kernels are. Each row is scanned in blocks of BLK
 * columns: a vectorised max per block, the best block(s) kept, and only the
 * winning block is searched for its index.
 */
#include <stdint.h>

#define BLK 64

#define DEFINE_KERNELS(T, SUFFIX)                                                        \
void argmax_rows_##SUFFIX(const T* s, int64_t rows, int64_t cols, int64_t ld,            \
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
void top2_rows_##SUFFIX(const T* s, int64_t rows, int64_t cols, int64_t ld,              \
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
