/* The CPython extension aeot.ot._native_ext: the kernels of _native_kernels.h behind a
 * run-time CPU dispatch.
 *
 * Variants: "baseline", the copy in this file, compiled for the compiler's default
 * target (SSE2 on x86-64); on x86 (AEOT_X86_VARIANTS, set by setup.py) also "avx2"
 * (_native_avx2.c: AVX2 + FMA, and the fused kernels) and "avx512" (_native_avx512.c:
 * the same with AVX-512 F/CD/VL/BW/DQ). At import the extension takes the best variant
 * for which __builtin_cpu_supports reports every feature it was compiled for (which
 * includes the OS saving the vector state); select() may step down. No instruction
 * beyond the chosen variant's ever runs, so one build serves every CPU of its platform.
 *
 * The Python functions take the kernels' arguments as they are: addresses as ints and
 * int64 lengths, strides and flags. They check nothing (aeot.ot._native does that) and
 * release the GIL while the kernel runs, so threads run kernels on row ranges in parallel.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define AEOT_TABLE aeot_kernels_baseline
#define AEOT_VARIANT "baseline"
#include "_native_kernels.h"
#undef AEOT_TABLE
#undef AEOT_VARIANT

#ifdef AEOT_X86_VARIANTS
extern const aeot_kernels aeot_kernels_avx2, aeot_kernels_avx512;
#endif
#define MAX_VARIANTS 3

/* the variant in use; changed only by select(), before any kernel runs */
static const aeot_kernels* active = &aeot_kernels_baseline;

/* the variants this CPU runs, best first; returns their number */
static int usable(const aeot_kernels* out[MAX_VARIANTS]) {
  int n = 0;
#ifdef AEOT_X86_VARIANTS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq"))
      out[n++] = &aeot_kernels_avx512;
    out[n++] = &aeot_kernels_avx2;
  }
#endif
  out[n++] = &aeot_kernels_baseline;
  return n;
}

typedef unsigned long long addr; /* a pointer passed as a Python int */
typedef long long i64;
#define PTR(T, a) ((T)(uintptr_t)(a))

#define ROW_REDUCTION(NAME, T)                                                              \
  static PyObject* py_##NAME(PyObject* self, PyObject* args) {                              \
    addr s, idx, val;                                                                       \
    i64 rows, cols, ld;                                                                     \
    if (!PyArg_ParseTuple(args, "KLLLKK:" #NAME, &s, &rows, &cols, &ld, &idx, &val))        \
      return NULL;                                                                          \
    const aeot_kernels* k = active;                                                         \
    Py_BEGIN_ALLOW_THREADS                                                                  \
    k->NAME(PTR(const T*, s), rows, cols, ld, PTR(int64_t*, idx), PTR(T*, val));            \
    Py_END_ALLOW_THREADS                                                                    \
    Py_RETURN_NONE;                                                                         \
  }
ROW_REDUCTION(argmax_rows_f32, float)
ROW_REDUCTION(argmax_rows_f64, double)
ROW_REDUCTION(top2_rows_f32, float)
ROW_REDUCTION(top2_rows_f64, double)

#define POOL_KERNELS(SUFFIX, T)                                                             \
  static PyObject* py_gather_dot_##SUFFIX(PyObject* self, PyObject* args) {                 \
    addr x, y, cells, raw;                                                                  \
    i64 rows, d, k;                                                                         \
    if (!PyArg_ParseTuple(args, "KLLKKLK:gather_dot_" #SUFFIX, &x, &rows, &d, &y, &cells,   \
                          &k, &raw))                                                        \
      return NULL;                                                                          \
    const aeot_kernels* t = active;                                                         \
    Py_BEGIN_ALLOW_THREADS                                                                  \
    t->gather_dot_##SUFFIX(PTR(const T*, x), rows, d, PTR(const T*, y),                     \
                           PTR(const int32_t*, cells), k, PTR(T*, raw));                    \
    Py_END_ALLOW_THREADS                                                                    \
    Py_RETURN_NONE;                                                                         \
  }                                                                                         \
  static PyObject* py_cand_top2_##SUFFIX(PyObject* self, PyObject* args) {                  \
    addr raw, cells, h, skip, idx, val;                                                     \
    i64 rows, k;                                                                            \
    if (!PyArg_ParseTuple(args, "KKLLKKKK:cand_top2_" #SUFFIX, &raw, &cells, &rows, &k, &h, \
                          &skip, &idx, &val))                                               \
      return NULL;                                                                          \
    const aeot_kernels* t = active;                                                         \
    Py_BEGIN_ALLOW_THREADS                                                                  \
    t->cand_top2_##SUFFIX(PTR(const T*, raw), PTR(const int32_t*, cells), rows, k,          \
                          PTR(const T*, h), PTR(const uint8_t*, skip), PTR(int64_t*, idx),  \
                          PTR(T*, val));                                                    \
    Py_END_ALLOW_THREADS                                                                    \
    Py_RETURN_NONE;                                                                         \
  }
POOL_KERNELS(f32, float)
POOL_KERNELS(f64, double)

/* the active variant's fused kernel NAME, or NULL and a RuntimeError */
#define FUSED(t, NAME)                                                                      \
  const aeot_kernels* t = active;                                                           \
  if (t->NAME == NULL) {                                                                    \
    PyErr_Format(PyExc_RuntimeError, #NAME " needs AVX2 + FMA, not variant %s", t->name);   \
    return NULL;                                                                            \
  }

/* (x, rows, d, ldx, yt, h, npad, idx, val) */
#define FUSED_REDUCTION(NAME)                                                               \
  static PyObject* py_##NAME(PyObject* self, PyObject* args) {                              \
    addr x, yt, h, idx, val;                                                                \
    i64 rows, d, ldx, npad;                                                                 \
    if (!PyArg_ParseTuple(args, "KLLLKKLKK:" #NAME, &x, &rows, &d, &ldx, &yt, &h, &npad,    \
                          &idx, &val))                                                      \
      return NULL;                                                                          \
    FUSED(t, NAME)                                                                          \
    Py_BEGIN_ALLOW_THREADS                                                                  \
    t->NAME(PTR(const float*, x), rows, d, ldx, PTR(const float*, yt), PTR(const float*, h), \
            npad, PTR(int64_t*, idx), PTR(float*, val));                                    \
    Py_END_ALLOW_THREADS                                                                    \
    Py_RETURN_NONE;                                                                         \
  }
FUSED_REDUCTION(fused_argmax_f32)
FUSED_REDUCTION(fused_top2_f32)

/* (x, rows, d, ldx, yt, h, npad, k, idx, val) */
static PyObject* py_fused_topk_f32(PyObject* self, PyObject* args) {
  addr x, yt, h, idx, val;
  i64 rows, d, ldx, npad, k;
  if (!PyArg_ParseTuple(args, "KLLLKKLLKK:fused_topk_f32", &x, &rows, &d, &ldx, &yt, &h, &npad,
                        &k, &idx, &val))
    return NULL;
  FUSED(t, fused_topk_f32)
  Py_BEGIN_ALLOW_THREADS
  t->fused_topk_f32(PTR(const float*, x), rows, d, ldx, PTR(const float*, yt),
                    PTR(const float*, h), npad, k, PTR(int64_t*, idx), PTR(float*, val));
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

/* (x, rows, d, ldx, best, yt, npad, lowest, total, total_sq) */
static PyObject* py_fused_lift_f32(PyObject* self, PyObject* args) {
  addr x, best, yt, lowest, total, total_sq;
  i64 rows, d, ldx, npad;
  if (!PyArg_ParseTuple(args, "KLLLKKLKKK:fused_lift_f32", &x, &rows, &d, &ldx, &best, &yt,
                        &npad, &lowest, &total, &total_sq))
    return NULL;
  FUSED(t, fused_lift_f32)
  Py_BEGIN_ALLOW_THREADS
  t->fused_lift_f32(PTR(const float*, x), rows, d, ldx, PTR(const float*, best),
                    PTR(const float*, yt), npad, PTR(float*, lowest), PTR(double*, total),
                    PTR(double*, total_sq));
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

/* (px, py, psi, lo, S, NB, edges, n0, max_flips, stop_at_hidden) -> int; lo may be 0 */
static PyObject* py_lawson_flips(PyObject* self, PyObject* args) {
  addr px, py, psi, lo, s, nb, edges;
  i64 n0, max_flips, stop_at_hidden, flips;
  if (!PyArg_ParseTuple(args, "KKKKKKKLLL:lawson_flips", &px, &py, &psi, &lo, &s, &nb, &edges,
                        &n0, &max_flips, &stop_at_hidden))
    return NULL;
  const aeot_kernels* t = active;
  Py_BEGIN_ALLOW_THREADS
  flips = t->lawson_flips(PTR(const double*, px), PTR(const double*, py),
                          PTR(const double*, psi), PTR(const double*, lo), PTR(int64_t*, s),
                          PTR(int64_t*, nb),
                          PTR(const int64_t*, edges), n0, max_flips, stop_at_hidden);
  Py_END_ALLOW_THREADS
  return PyLong_FromLongLong(flips);
}

/* (px, py, psi, lo, S, NB, F, box, shift, V, ei, ej, length, seg, cut, area_i, area_j) -> E;
 * lo and shift may be 0 */
static PyObject* py_warm_edges(PyObject* self, PyObject* args) {
  addr px, py, psi, lo, s, nb, box, shift, v, ei, ej, length, seg, cut, area_i, area_j;
  i64 f, kept;
  if (!PyArg_ParseTuple(args, "KKKKKKLKKKKKKKKKK:warm_edges", &px, &py, &psi, &lo, &s, &nb, &f,
                        &box, &shift, &v, &ei, &ej, &length, &seg, &cut, &area_i, &area_j))
    return NULL;
  const aeot_kernels* t = active;
  Py_BEGIN_ALLOW_THREADS
  kept = t->warm_edges(PTR(const double*, px), PTR(const double*, py), PTR(const double*, psi),
                       PTR(const double*, lo), PTR(const int64_t*, s), PTR(const int64_t*, nb), f,
                       PTR(const double*, box), PTR(const double*, shift), PTR(double*, v),
                       PTR(int64_t*, ei), PTR(int64_t*, ej), PTR(double*, length),
                       PTR(double*, seg), PTR(uint8_t*, cut), PTR(double*, area_i),
                       PTR(double*, area_j));
  Py_END_ALLOW_THREADS
  return PyLong_FromLongLong(kept);
}

/* (px, py, psi, lo, N, S, NB) -> T; lo may be 0 */
static PyObject* py_sweep_triangulate(PyObject* self, PyObject* args) {
  addr px, py, psi, lo, s, nb;
  i64 n, count;
  if (!PyArg_ParseTuple(args, "KKKKLKK:sweep_triangulate", &px, &py, &psi, &lo, &n, &s, &nb))
    return NULL;
  const aeot_kernels* t = active;
  Py_BEGIN_ALLOW_THREADS
  count = t->sweep_triangulate(PTR(const double*, px), PTR(const double*, py),
                               PTR(const double*, psi), PTR(const double*, lo), n,
                               PTR(int64_t*, s), PTR(int64_t*, nb));
  Py_END_ALLOW_THREADS
  return PyLong_FromLongLong(count);
}

/* The accelerated discrete OT passes (aeot.ot.accelerated); addresses, then sizes. */
/* (c, rows, m, ld, psi, a, reg, buf, columns) -> sum_i a_i (top_i + log s_i) */
static PyObject* py_lse_dense_f64(PyObject* self, PyObject* args) {
  addr c, psi, a, buf, columns;
  i64 rows, m, ld;
  double reg, value;
  if (!PyArg_ParseTuple(args, "KLLLKKdKK:lse_dense_f64", &c, &rows, &m, &ld, &psi, &a, &reg,
                        &buf, &columns))
    return NULL;
  const aeot_kernels* t = active;
  Py_BEGIN_ALLOW_THREADS
  value = t->lse_dense_f64(PTR(const double*, c), rows, m, ld, PTR(const double*, psi),
                           PTR(const double*, a), reg, PTR(double*, buf),
                           PTR(double*, columns));
  Py_END_ALLOW_THREADS
  return PyFloat_FromDouble(value);
}

/* (psi, col, v, ptr, rows, a, reg, w, columns) -> sum_i a_i (top_i + log s_i) */
static PyObject* py_lse_csr_f64(PyObject* self, PyObject* args) {
  addr psi, col, v, ptr, a, w, columns;
  i64 rows;
  double reg, value;
  if (!PyArg_ParseTuple(args, "KKKKLKdKK:lse_csr_f64", &psi, &col, &v, &ptr, &rows, &a, &reg,
                        &w, &columns))
    return NULL;
  const aeot_kernels* t = active;
  Py_BEGIN_ALLOW_THREADS
  value = t->lse_csr_f64(PTR(const double*, psi), PTR(const int64_t*, col),
                         PTR(const double*, v), PTR(const int64_t*, ptr), rows,
                         PTR(const double*, a), reg, PTR(double*, w), PTR(double*, columns));
  Py_END_ALLOW_THREADS
  return PyFloat_FromDouble(value);
}

/* (c, rows, m, ld, psi0, radius, buf, top, count) -> total count */
static PyObject* py_active_count_f64(PyObject* self, PyObject* args) {
  addr c, psi0, buf, top, count;
  i64 rows, m, ld, total;
  double radius;
  if (!PyArg_ParseTuple(args, "KLLLKdKKK:active_count_f64", &c, &rows, &m, &ld, &psi0, &radius,
                        &buf, &top, &count))
    return NULL;
  const aeot_kernels* t = active;
  Py_BEGIN_ALLOW_THREADS
  total = t->active_count_f64(PTR(const double*, c), rows, m, ld, PTR(const double*, psi0),
                              radius, PTR(double*, buf), PTR(double*, top),
                              PTR(int64_t*, count));
  Py_END_ALLOW_THREADS
  return PyLong_FromLongLong(total);
}

/* (c, rows, m, ld, psi0, top, radius, ptr, col, v) */
static PyObject* py_active_fill_f64(PyObject* self, PyObject* args) {
  addr c, psi0, top, ptr, col, v;
  i64 rows, m, ld;
  double radius;
  if (!PyArg_ParseTuple(args, "KLLLKKdKKK:active_fill_f64", &c, &rows, &m, &ld, &psi0, &top,
                        &radius, &ptr, &col, &v))
    return NULL;
  const aeot_kernels* t = active;
  int64_t bad;
  Py_BEGIN_ALLOW_THREADS
  bad = t->active_fill_f64(PTR(const double*, c), rows, m, ld, PTR(const double*, psi0),
                           PTR(const double*, top), radius, PTR(const int64_t*, ptr),
                           PTR(int64_t*, col), PTR(double*, v));
  Py_END_ALLOW_THREADS
  return PyLong_FromLongLong(bad);
}

/* (c, rows, m, ld, psi, x, phi, dot) */
static PyObject* py_ctransform_dot_f64(PyObject* self, PyObject* args) {
  addr c, psi, x, phi, dot;
  i64 rows, m, ld;
  if (!PyArg_ParseTuple(args, "KLLLKKKK:ctransform_dot_f64", &c, &rows, &m, &ld, &psi, &x,
                        &phi, &dot))
    return NULL;
  const aeot_kernels* t = active;
  Py_BEGIN_ALLOW_THREADS
  t->ctransform_dot_f64(PTR(const double*, c), rows, m, ld, PTR(const double*, psi),
                        PTR(const double*, x), PTR(double*, phi), PTR(double*, dot));
  Py_END_ALLOW_THREADS
  Py_RETURN_NONE;
}

static PyObject* py_variant(PyObject* self, PyObject* noargs) {
  return PyUnicode_FromString(active->name);
}

static PyObject* py_variants(PyObject* self, PyObject* noargs) {
  const aeot_kernels* found[MAX_VARIANTS];
  int n = usable(found);
  PyObject* names = PyTuple_New(n);
  if (names == NULL) return NULL;
  for (int i = 0; i < n; ++i) {
    PyObject* name = PyUnicode_FromString(found[i]->name);
    if (name == NULL) {
      Py_DECREF(names);
      return NULL;
    }
    PyTuple_SET_ITEM(names, i, name);
  }
  return names;
}

static PyObject* py_select(PyObject* self, PyObject* args) {
  const char* name;
  if (!PyArg_ParseTuple(args, "s:select", &name)) return NULL;
  const aeot_kernels* found[MAX_VARIANTS];
  int n = usable(found);
  for (int i = 0; i < n; ++i)
    if (strcmp(found[i]->name, name) == 0) {
      active = found[i];
      Py_RETURN_NONE;
    }
  PyObject* names = py_variants(self, NULL);
  if (names != NULL) {
    PyErr_Format(PyExc_ValueError, "no kernel variant '%s' on this CPU, which runs %R", name,
                 names);
    Py_DECREF(names);
  }
  return NULL;
}

static PyObject* py_fused_available(PyObject* self, PyObject* noargs) {
  return PyBool_FromLong(active->fused_argmax_f32 != NULL);
}

#define KERNEL(NAME) {#NAME, py_##NAME, METH_VARARGS, NULL}
static PyMethodDef methods[] = {
    KERNEL(argmax_rows_f32),
    KERNEL(argmax_rows_f64),
    KERNEL(top2_rows_f32),
    KERNEL(top2_rows_f64),
    KERNEL(gather_dot_f32),
    KERNEL(gather_dot_f64),
    KERNEL(cand_top2_f32),
    KERNEL(cand_top2_f64),
    KERNEL(fused_argmax_f32),
    KERNEL(fused_top2_f32),
    KERNEL(fused_topk_f32),
    KERNEL(fused_lift_f32),
    KERNEL(lawson_flips),
    KERNEL(warm_edges),
    KERNEL(sweep_triangulate),
    KERNEL(lse_dense_f64),
    KERNEL(lse_csr_f64),
    KERNEL(active_count_f64),
    KERNEL(active_fill_f64),
    KERNEL(ctransform_dot_f64),
    {"variant", py_variant, METH_NOARGS,
     "The kernel variant in use: 'avx512', 'avx2' or 'baseline'."},
    {"variants", py_variants, METH_NOARGS, "The variants this CPU runs, best first."},
    {"select", py_select, METH_VARARGS, "Use the variant named (one of variants())."},
    {"fused_available", py_fused_available, METH_NOARGS,
     "Whether the variant in use has the fused kernels (avx2, avx512)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "aeot.ot._native_ext",
    .m_doc = "The C kernels of aeot.ot, dispatched on the CPU's features (see aeot.ot._native).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__native_ext(void) {
  const aeot_kernels* found[MAX_VARIANTS];
  usable(found);
  active = found[0];
  return PyModule_Create(&module);
}
