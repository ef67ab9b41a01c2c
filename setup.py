"""The compiled part of radpipe: its DICOM header walk (everything else is in pyproject.toml).

The extension is optional: where it cannot be built, radpipe runs the same walk in Python
(``radpipe.io.dicom.fast_header.walk_python``), slower but with the same results.
"""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension(
                "radpipe.io.dicom._header_walk",
                ["src/radpipe/io/dicom/_header_walk.pyx"],
                optional=True,
                extra_compile_args=["-O3"],
            )
        ],
        compiler_directives={"language_level": "3"},
    )
)
