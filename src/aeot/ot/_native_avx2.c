/* The kernels for AVX2 + FMA, with the fused ones: the table aeot_kernels_avx2.
 *
 * setup.py compiles this file on x86 alone, with -mavx2 -mfma; _native_ext.c calls it
 * only where the CPU and the OS support both.
 */
#define AEOT_TABLE aeot_kernels_avx2
#define AEOT_VARIANT "avx2"
#include "_native_kernels.h"
