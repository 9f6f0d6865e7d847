/* The kernels for AVX-512 (F, CD, VL, BW, DQ) with AVX2 + FMA: the table
 * aeot_kernels_avx512.
 *
 * The same 256-bit code as _native_avx2.c, but with 32 vector registers and mask
 * registers (EVEX encodings), which the fused top-2 kernel needs to keep its lane state
 * in registers (about twice as fast as the avx2 variant on the same CPU). setup.py
 * compiles this file on x86 alone, with those -m flags; _native_ext.c calls it only
 * where the CPU and the OS support all of them.
 */
#define AEOT_TABLE aeot_kernels_avx512
#define AEOT_VARIANT "avx512"
#include "_native_kernels.h"
