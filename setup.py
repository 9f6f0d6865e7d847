"""The C kernels of aeot.ot as the extension ``aeot.ot._native_ext``; the package's
metadata lives in pyproject.toml.

One build serves every CPU of its platform: the kernels are compiled for the compiler's
default target and, on x86 with a GCC-like compiler, again for AVX2 + FMA and for
AVX-512 (one file each, with its own -m flags); the extension picks at import the best
variant the CPU runs. The extension is optional: without a C compiler the install goes
on and aeot uses its pure-torch path, with a warning.
"""

import re

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_OT = "src/aeot/ot/"

# no -ffast-math: reductions keep their order, so every variant ranks scores as torch
# does; fma contraction as in GCC's default C dialect
_FLAGS = [
    "-O3",
    "-fno-math-errno",
    "-fno-trapping-math",
    "-fno-signed-zeros",
    "-ffinite-math-only",
    "-ffp-contract=fast",
]
_AVX2 = ["-mavx2", "-mfma"]
# the same 256-bit code with AVX-512's 32 registers and mask registers; with generic
# tuning the fused top-2 kernel runs at half the speed
_AVX512 = [*_AVX2, "-mavx512f", "-mavx512cd", "-mavx512vl", "-mavx512bw", "-mavx512dq"]
_VARIANTS = {  # file: flags; _native_ext.c checks the CPU for the same features
    _OT + "_native_avx2.c": _AVX2,
    _OT + "_native_avx512.c": [*_AVX512, "-mtune=skylake-avx512"],
}


class _BuildExt(build_ext):
    """build_ext that compiles each variant's file with its own instruction-set flags."""

    def build_extension(self, ext):
        if self.compiler.compiler_type == "msvc":  # the baseline variant alone
            return super().build_extension(ext)
        ext.extra_compile_args = [*ext.extra_compile_args, *_FLAGS]
        if re.search(r"(x86_64|amd64|i[3-6]86)$", self.plat_name.lower()):
            for source, flags in _VARIANTS.items():
                ext.extra_objects += self.compiler.compile(
                    [source],
                    output_dir=self.build_temp,
                    extra_postargs=[*ext.extra_compile_args, *flags],
                    depends=ext.depends,
                )
            ext.define_macros = [*ext.define_macros, ("AEOT_X86_VARIANTS", "1")]
        return super().build_extension(ext)


setup(
    ext_modules=[
        Extension(
            "aeot.ot._native_ext",
            sources=[_OT + "_native_ext.c"],
            depends=[_OT + "_native_kernels.h", *_VARIANTS],
            optional=True,
        )
    ],
    cmdclass={"build_ext": _BuildExt},
)
